//! One provider fake behind one interface, so that the fault-injection suite runs every fault
//! against every provider: a config and an enforce policy in a temp dir, the fake's paths for
//! listing and deleting, what the fake still holds, which ids its DELETEs named, and the
//! journal as `history --format json` shows it.

use super::fake::Server;
use super::{Output, cloudinary, docspace, json, retentiond_in, write};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Docspace,
    Cloudinary,
}

pub const KINDS: [Kind; 2] = [Kind::Docspace, Kind::Cloudinary];

pub enum Fake {
    Docspace(docspace::Fake),
    Cloudinary(cloudinary::Fake),
}

pub struct Target {
    pub kind: Kind,
    pub fake: Fake,
    pub dir: tempfile::TempDir,
}

/// The ids a plan keeps and deletes.
#[derive(Clone, Debug, Default)]
pub struct Planned {
    pub keep: BTreeSet<String>,
    pub delete: BTreeSet<String>,
    pub json: Value,
}

pub const POLICY: &str = "p";

impl Target {
    /// The standard data: DocSpace 20 daily backups; Cloudinary 3 assets of 8 daily versions
    /// (the newest live), served two assets a page. `keep` is the policy's keep rule.
    pub fn new(kind: Kind, keep: &str) -> Target {
        let fake = match kind {
            Kind::Docspace => Fake::Docspace(docspace::Fake::start(docspace::daily(20))),
            Kind::Cloudinary => Fake::Cloudinary(cloudinary::Fake::start(
                (1..=3)
                    .map(|n| cloudinary::asset(n, &format!("products/p{n}"), 8, 0))
                    .collect(),
                2,
            )),
        };
        Target::with(kind, fake, keep, "")
    }

    /// A target on a fake set up by the caller; `http` adds keys to the account's http block.
    pub fn with(kind: Kind, fake: Fake, keep: &str, http: &str) -> Target {
        let dir = tempfile::tempdir().unwrap();
        let target = Target { kind, fake, dir };
        target.configure(keep, http);
        target
    }

    /// (Re)writes the config and the policy.
    pub fn configure(&self, keep: &str, http: &str) {
        let base = &self.server().base;
        let account = match self.kind {
            Kind::Docspace => format!(
                "  portal:\n    provider: onlyoffice-docspace\n    base_url: {base}\n    api_key: ${{env:TEST_DOCSPACE_KEY}}\n"
            ),
            Kind::Cloudinary => format!(
                "  portal:\n    provider: cloudinary\n    base_url: {base}\n    cloud_name: {}\n    api_key: ${{env:TEST_CLD_KEY}}\n    api_secret: ${{env:TEST_CLD_SECRET}}\n",
                cloudinary::CLOUD
            ),
        };
        write(
            self.dir.path(),
            "retentiond.yaml",
            &format!(
                "policies: policies\nstate_dir: state\naccounts:\n{account}    http: {{retries: 2, backoff: 20ms{http}}}\n"
            ),
        );
        let select = match self.kind {
            Kind::Docspace => "",
            Kind::Cloudinary => "select: {resource_type: image, type: upload}\n",
        };
        write(
            self.dir.path(),
            "policies/p.yaml",
            &format!("name: {POLICY}\naccount: portal\nmode: enforce\n{select}keep: {keep}\n"),
        );
    }

    pub fn server(&self) -> &Server {
        match &self.fake {
            Fake::Docspace(f) => &f.server,
            Fake::Cloudinary(f) => &f.server,
        }
    }

    /// A path fragment that every listing call has and no other call.
    pub fn listing_path(&self) -> &'static str {
        match self.kind {
            Kind::Docspace => "/getbackuphistory",
            Kind::Cloudinary => "/resources/image",
        }
    }

    /// A path fragment that every delete call has.
    pub fn delete_path(&self) -> &'static str {
        match self.kind {
            Kind::Docspace => "/deletebackup/",
            Kind::Cloudinary => "/resources/backup/",
        }
    }

    /// The path fragment of the delete call that deletes `id` (DocSpace: the backup;
    /// Cloudinary: the call for the version's asset).
    pub fn delete_path_of(&self, id: &str) -> String {
        match &self.fake {
            Fake::Docspace(_) => format!("/deletebackup/{id}"),
            Fake::Cloudinary(f) => {
                let state = f.state.lock().unwrap();
                let asset = state
                    .assets
                    .iter()
                    .find(|a| a.versions.iter().any(|v| v.version_id == id))
                    .expect("a version the fake holds");
                format!("/resources/backup/{}", asset.asset_id)
            }
        }
    }

    /// The ids the fake still holds.
    pub fn held(&self) -> BTreeSet<String> {
        match &self.fake {
            Fake::Docspace(f) => f.ids().into_iter().collect(),
            Fake::Cloudinary(f) => f.versions().into_iter().map(|(_, v)| v).collect(),
        }
    }

    /// How many DELETE requests named each id.
    pub fn delete_requests(&self) -> BTreeMap<String, usize> {
        let mut sent = BTreeMap::new();
        for request in self.server().requests() {
            if request.method != "DELETE" {
                continue;
            }
            let ids: Vec<String> = match self.kind {
                Kind::Docspace => {
                    let id = request.path.rsplit_once("/deletebackup/").unwrap().1;
                    vec![super::fake::decode(id)]
                }
                Kind::Cloudinary => {
                    let body: Value = serde_json::from_slice(&request.body).unwrap();
                    body["version_ids"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap().to_string())
                        .collect()
                }
            };
            for id in ids {
                *sent.entry(id).or_insert(0) += 1;
            }
        }
        sent
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["--config", "retentiond.yaml"];
        all.extend_from_slice(args);
        retentiond_in(self.dir.path(), &all)
    }

    pub fn plan(&self) -> Planned {
        let out = self.run(&["plan", "--format", "json"]);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        planned(json(&out.stdout))
    }

    /// Every run the journal holds, newest first.
    pub fn history(&self) -> Vec<Value> {
        let out = self.run(&["history", "--format", "json", "--limit", "1000"]);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        json(&out.stdout)["runs"].as_array().unwrap().clone()
    }

    /// The journal's deletion records, oldest first.
    pub fn journal_deletions(&self) -> Vec<Value> {
        let mut runs = self.history();
        runs.reverse();
        runs.iter()
            .flat_map(|r| r["deletions"].as_array().unwrap().clone())
            .collect()
    }

    /// What every fault must leave true: nothing outside the plan's delete set is gone, and
    /// every id a DELETE named has a journal record with an outcome that matches what the fake
    /// holds.
    pub fn check_invariants(&self, planned: &Planned) {
        let held = self.held();
        let all: BTreeSet<String> = planned.keep.union(&planned.delete).cloned().collect();
        let gone: BTreeSet<&String> = all.difference(&held).collect();
        for id in &gone {
            assert!(
                planned.delete.contains(*id),
                "{id} was deleted but the plan keeps it"
            );
        }
        let deletions = self.journal_deletions();
        for record in &deletions {
            assert!(
                !record["outcome"].is_null(),
                "an intent without an outcome after finished runs: {record}"
            );
        }
        for id in self.delete_requests().keys() {
            let records: Vec<&Value> = deletions.iter().filter(|d| d["id"] == *id).collect();
            assert!(
                !records.is_empty(),
                "a DELETE named {id}, but the journal has no intent for it"
            );
            for record in &records {
                assert!(
                    !record["outcome"].is_null(),
                    "the journal has no outcome for {id}: {record}"
                );
                assert!(record["policy"] == POLICY && !record["intent_at"].is_null());
            }
            let last = records.last().unwrap();
            let outcome = last["outcome"].as_str().unwrap();
            assert_eq!(
                outcome == "deleted",
                !held.contains(id),
                "the journal says {id} was {outcome}; the fake {} it",
                if held.contains(id) {
                    "still holds"
                } else {
                    "no longer holds"
                }
            );
        }
    }
}

pub fn planned(plan: Value) -> Planned {
    let mut planned = Planned::default();
    for d in plan["policies"][0]["backups"].as_array().unwrap() {
        let id = d["id"].as_str().unwrap().to_string();
        match d["action"].as_str().unwrap() {
            "keep" => planned.keep.insert(id),
            "delete" => planned.delete.insert(id),
            _ => false,
        };
    }
    planned.json = plan;
    planned
}
