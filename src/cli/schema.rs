//! `retentiond schema`: the JSON Schema of policy files.

use super::shared::{Outcome, write_failure};
use crate::exit;
use crate::policy;
use std::io::{self, Write};

pub(super) fn schema(out: &mut dyn Write) -> Outcome {
    let schema = policy::schema::policy_file_schema();
    serde_json::to_writer_pretty(&mut *out, &schema)
        .map_err(io::Error::from)
        .and_then(|_| writeln!(out))
        .map_err(write_failure)?;
    Ok(exit::OK)
}
