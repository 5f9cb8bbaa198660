//! What notifications last said about each policy (`notify`): one row per policy, event and
//! key while its condition lasts, so that a condition is told once (by whichever host of a
//! fleet ran the policy), and its end once.

use super::{Journal, Result, from_ms, ms};
use crate::sql_params;
use jiff::Timestamp;

/// A condition told and not yet resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub event: String,
    pub key: String,
    pub title: String,
    pub since: Timestamp,
}

impl Journal {
    /// The conditions of `policy` told and not resolved.
    pub fn notices(&self, policy: &str) -> Result<Vec<Notice>> {
        if self.version()? < super::holds::HOLDS {
            return Ok(Vec::new());
        }
        self.tx("read the notifications", |tx| {
            Ok(tx
                .query(
                    "SELECT event, key, title, since FROM notifications WHERE policy = $1
                     ORDER BY event, key",
                    sql_params![policy],
                )?
                .iter()
                .map(|r| Notice {
                    event: r.text(0),
                    key: r.text(1),
                    title: r.text(2),
                    since: from_ms(r.int(3)),
                })
                .collect())
        })
    }

    /// Records that `policy`'s `event` was told with `key` (replacing what was told of that
    /// event before, unless `keep_others`: holds expire one by one).
    pub fn noticed(
        &self,
        policy: &str,
        event: &str,
        key: &str,
        title: &str,
        keep_others: bool,
    ) -> Result<()> {
        self.tx("record a notification", |tx| {
            if !keep_others {
                tx.execute(
                    "DELETE FROM notifications WHERE policy = $1 AND event = $2",
                    sql_params![policy, event],
                )?;
            }
            tx.execute(
                "INSERT INTO notifications (policy, event, key, title, since)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                sql_params![policy, event, key, title, ms(Timestamp::now())],
            )
            .map(drop)
        })
    }

    /// Records that `policy`'s `event` is no longer the case.
    pub fn resolved(&self, policy: &str, event: &str) -> Result<()> {
        self.tx("record a resolved notification", |tx| {
            tx.execute(
                "DELETE FROM notifications WHERE policy = $1 AND event = $2",
                sql_params![policy, event],
            )
            .map(drop)
        })
    }
}
