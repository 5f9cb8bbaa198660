//! One provider fake behind one interface, so that the fault-injection suite runs every fault
//! against every provider: a config and an enforce policy in a temp dir, the fake's paths for
//! listing and deleting, what the fake still holds, which ids its DELETEs named, and the
//! journal as `history --format json` shows it.

use super::fake::Server;
use super::{Output, cloudinary, docspace, huawei, json, s3, write};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Docspace,
    Cloudinary,
    Csbs,
    Cbr,
    Taurusdb,
    S3,
}

pub const KINDS: [Kind; 6] = [
    Kind::Docspace,
    Kind::Cloudinary,
    Kind::Csbs,
    Kind::Cbr,
    Kind::Taurusdb,
    Kind::S3,
];

pub enum Fake {
    Docspace(docspace::Fake),
    Cloudinary(cloudinary::Fake),
    /// IAM, CSBS and TaurusDB on one server (or IAM and CBR).
    Huawei(huawei::Fake),
    /// moto's S3 server behind a forwarding proxy.
    S3(s3::Fake),
}

pub struct Target {
    pub kind: Kind,
    pub fake: Fake,
    pub dir: tempfile::TempDir,
    /// The config's `journal:` line (PostgreSQL), or empty (SQLite in `state`).
    pub journal: std::cell::RefCell<String>,
}

/// The ids a plan keeps and deletes.
#[derive(Clone, Debug, Default)]
pub struct Planned {
    pub keep: BTreeSet<String>,
    pub delete: BTreeSet<String>,
    /// What the fake holds that the listing never shows (TaurusDB's automated backups).
    pub outside: BTreeSet<String>,
    pub json: Value,
}

impl Planned {
    /// What must survive: the plan's keep set and whatever it never saw.
    pub fn survivors(&self) -> BTreeSet<String> {
        self.keep.union(&self.outside).cloned().collect()
    }

    /// Everything the fake held when the plan was made.
    pub fn all(&self) -> BTreeSet<String> {
        let planned: BTreeSet<String> = self.keep.union(&self.delete).cloned().collect();
        planned.union(&self.outside).cloned().collect()
    }
}

pub const POLICY: &str = "p";

impl Target {
    /// The standard data: DocSpace 20 daily backups; Cloudinary 3 assets of 8 daily versions
    /// (the newest live), served two assets a page; CSBS two servers of 10 and 8 daily
    /// backups; TaurusDB two instances of 10 and 7 manual backups and an automated one; S3
    /// two databases of 10 and 8 daily dumps under `db/`, and a key the pattern leaves out.
    /// `keep` is the policy's keep rule.
    pub fn new(kind: Kind, keep: &str) -> Target {
        let fake = match kind {
            Kind::Docspace => Fake::Docspace(docspace::Fake::start(docspace::daily(20))),
            Kind::Cloudinary => Fake::Cloudinary(cloudinary::Fake::start(
                (1..=3)
                    .map(|n| cloudinary::asset(n, &format!("products/p{n}"), 8, 0))
                    .collect(),
                2,
            )),
            Kind::Csbs => {
                let mut items = huawei::items("srv-a", 10);
                items.extend(huawei::items("srv-b", 8));
                Fake::Huawei(huawei::Fake::start(items, Vec::new()))
            }
            Kind::Cbr => {
                let mut backups = huawei::cbr_backups("srv-a", 10);
                backups.extend(huawei::cbr_backups("srv-b", 8));
                Fake::Huawei(huawei::Fake::start_cbr(backups))
            }
            Kind::Taurusdb => {
                let mut backups = huawei::backups("i1in07", 10);
                backups.extend(huawei::backups("i2in07", 7));
                let mut auto = huawei::backups("i1in07", 1).remove(0);
                auto.id = "autobackup00br07".into();
                auto.kind = "auto".into();
                backups.push(auto);
                Fake::Huawei(huawei::Fake::start(Vec::new(), backups))
            }
            Kind::S3 => {
                let mut objects = s3::daily_in("db/alpha/", 10);
                objects.extend(s3::daily_in("db/beta/", 8));
                objects.push(s3::Object::new("db/README.txt"));
                Fake::S3(s3::Fake::start(&objects, false, false))
            }
        };
        Target::with(kind, fake, keep, "")
    }

    /// A target on a fake set up by the caller; `http` adds keys to the account's http block.
    pub fn with(kind: Kind, fake: Fake, keep: &str, http: &str) -> Target {
        let dir = tempfile::tempdir().unwrap();
        let target = Target {
            kind,
            fake,
            dir,
            journal: Default::default(),
        };
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
            Kind::Csbs => format!(
                "  portal:\n    provider: huaweicloud-csbs\n    region: ap-southeast-1\n    project_id: {}\n    endpoint: {base}\n    auth: {{access_key: \"${{env:TEST_HW_AK}}\", secret_key: \"${{env:TEST_HW_SK}}\"}}\n    poll_interval: 20ms\n    delete_timeout: 20s\n",
                huawei::PROJECT
            ),
            Kind::Cbr => format!(
                "  portal:\n    provider: huaweicloud-cbr\n    region: ap-southeast-1\n    project_id: {}\n    endpoint: {base}\n    auth: {{access_key: \"${{env:TEST_HW_AK}}\", secret_key: \"${{env:TEST_HW_SK}}\"}}\n    poll_interval: 20ms\n    delete_timeout: 20s\n",
                huawei::PROJECT
            ),
            Kind::Taurusdb => format!(
                "  portal:\n    provider: huaweicloud-taurusdb\n    region: ap-southeast-1\n    project_id: {}\n    endpoint: {base}\n    iam_endpoint: {base}\n    auth: {{username: {}, password: \"${{env:TEST_HW_PASSWORD}}\", domain: {}}}\n",
                huawei::PROJECT,
                huawei::USER,
                huawei::DOMAIN
            ),
            Kind::S3 => {
                let Fake::S3(f) = &self.fake else {
                    unreachable!()
                };
                format!(
                    "  portal:\n    provider: s3\n    endpoint: {base}\n    region: eu-west-1\n    bucket: {}\n    path_style: true\n{}",
                    s3::BUCKET,
                    f.credentials(self.dir.path())
                )
            }
        };
        write(
            self.dir.path(),
            "retentiond.yaml",
            &format!(
                "policies: policies\nstate_dir: state\n{}accounts:\n{account}    http: {{retries: 2, backoff: 20ms{http}}}\n",
                self.journal.borrow()
            ),
        );
        let select = match self.kind {
            Kind::Docspace | Kind::Csbs | Kind::Cbr => "",
            Kind::Cloudinary => "select: {resource_type: image, type: upload}\n",
            Kind::Taurusdb => "select: {backup_type: manual}\n",
            Kind::S3 => {
                "select: {prefix: db/, pattern: '^(?P<group>[a-z]+)/(?P<ts>\\d{8}T\\d{6}Z)\\.sql\\.gz$'}\n"
            }
        };
        // The provider tests delete most of a small listing at once: past the default
        // guard.max_delete_fraction (0.5), which tests/operators.rs tests.
        write(
            self.dir.path(),
            "policies/p.yaml",
            &format!(
                "name: {POLICY}\naccount: portal\nmode: enforce\n{select}keep: {keep}\nguard: {{max_delete_fraction: 1}}\n"
            ),
        );
    }

    /// Keeps the journal in `pg` from now on (the config is rewritten with the same keys).
    pub fn use_postgres(&self, pg: &super::postgres::Postgres) {
        let line = pg.journal_line(self.dir.path());
        let path = self.dir.path().join("retentiond.yaml");
        let config = std::fs::read_to_string(&path).unwrap();
        let config = config.replacen(
            "state_dir: state\n",
            &format!("state_dir: state\n{line}"),
            1,
        );
        std::fs::write(&path, config).unwrap();
        *self.journal.borrow_mut() = line;
    }

    pub fn server(&self) -> &Server {
        match &self.fake {
            Fake::Docspace(f) => &f.server,
            Fake::Cloudinary(f) => &f.server,
            Fake::Huawei(f) => &f.server,
            Fake::S3(f) => &f.server,
        }
    }

    /// The method of a delete call: DELETE, or POST for S3's DeleteObjects.
    pub fn delete_method(&self) -> &'static str {
        match self.kind {
            Kind::S3 => "POST",
            _ => "DELETE",
        }
    }

    pub fn huawei(&self) -> &huawei::Fake {
        match &self.fake {
            Fake::Huawei(f) => f,
            _ => panic!("not a Huawei Cloud target"),
        }
    }

    /// A path fragment that every listing call has and no other call.
    pub fn listing_path(&self) -> &'static str {
        match self.kind {
            Kind::Docspace => "/getbackuphistory",
            Kind::Cloudinary => "/resources/image",
            Kind::Csbs => "/checkpoint_items",
            Kind::Cbr | Kind::Taurusdb => "/backups",
            Kind::S3 => "/backups",
        }
    }

    /// A path fragment that every delete call has.
    pub fn delete_path(&self) -> &'static str {
        match self.kind {
            Kind::Docspace => "/deletebackup/",
            Kind::Cloudinary => "/resources/backup/",
            Kind::Csbs => "/checkpoints/",
            Kind::Cbr => "/backups/",
            Kind::Taurusdb | Kind::S3 => "/backups",
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
            Fake::Huawei(f) if self.kind == Kind::Csbs => {
                let state = f.state.lock().unwrap();
                let item = state.items.iter().find(|i| i.id == id).expect("an item");
                format!("/checkpoints/{}", item.checkpoint_id)
            }
            Fake::Huawei(_) if self.kind == Kind::Cbr => format!("/backups/{id}"),
            // One batch call deletes them all.
            Fake::Huawei(_) | Fake::S3(_) => "/backups".to_string(),
        }
    }

    /// The ids the fake still holds.
    pub fn held(&self) -> BTreeSet<String> {
        match &self.fake {
            Fake::Docspace(f) => f.ids().into_iter().collect(),
            Fake::Cloudinary(f) => f.versions().into_iter().map(|(_, v)| v).collect(),
            Fake::Huawei(f) if self.kind == Kind::Csbs => f.item_ids().into_iter().collect(),
            Fake::Huawei(f) if self.kind == Kind::Cbr => f.cbr_ids().into_iter().collect(),
            Fake::Huawei(f) => f.backup_ids().into_iter().collect(),
            Fake::S3(f) => f.keys().into_iter().collect(),
        }
    }

    /// How many DELETE requests named each id.
    pub fn delete_requests(&self) -> BTreeMap<String, usize> {
        let mut sent = BTreeMap::new();
        for request in self.server().requests() {
            if request.method != self.delete_method() {
                continue;
            }
            let ids: Vec<String> = match self.kind {
                Kind::Docspace => {
                    let id = request.path.rsplit_once("/deletebackup/").unwrap().1;
                    vec![super::fake::decode(id)]
                }
                Kind::Cloudinary | Kind::Taurusdb => {
                    let key = if self.kind == Kind::Cloudinary {
                        "version_ids"
                    } else {
                        "backup_ids"
                    };
                    let body: Value = serde_json::from_slice(&request.body).unwrap();
                    body[key]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap().to_string())
                        .collect()
                }
                Kind::Csbs => request.param("checkpoint_items").into_iter().collect(),
                Kind::Cbr => {
                    let id = request.path.rsplit_once("/backups/").unwrap().1;
                    vec![super::fake::decode(id)]
                }
                Kind::S3 => s3::delete_request_keys(&request.body),
            };
            for id in ids {
                *sent.entry(id).or_insert(0) += 1;
            }
        }
        sent
    }

    /// Most backups vanish behind retentiond's back: what is left is under half of each
    /// group (or the group is gone).
    pub fn shrink(&self) {
        match &self.fake {
            Fake::Docspace(f) => f.records.lock().unwrap().truncate(8),
            Fake::Cloudinary(f) => {
                let mut state = f.state.lock().unwrap();
                for asset in &mut state.assets {
                    asset.versions.truncate(3);
                }
                state.assets.truncate(2);
            }
            Fake::Huawei(f) => {
                let mut state = f.state.lock().unwrap();
                state.items.retain(|i| i.resource_id == "srv-a");
                state.items.truncate(4);
                state.backups.retain(|b| b.instance_id == "i1in07");
                state.backups.truncate(4);
                state.cbr.retain(|b| b.resource_id == "srv-a");
                state.cbr.truncate(4);
            }
            Fake::S3(f) => {
                let keys = f.keys();
                let gone: Vec<String> = keys
                    .iter()
                    .filter(|k| k.starts_with("db/beta/"))
                    .chain(keys.iter().filter(|k| k.starts_with("db/alpha/")).skip(4))
                    .cloned()
                    .collect();
                f.moto.delete(s3::BUCKET, &gone);
            }
        }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        super::configured(self.dir.path(), args)
    }

    /// The ids `list --format json` shows, in its order; the listing must succeed.
    pub fn listed(&self) -> Vec<String> {
        let out = self.run(&["list", "--format", "json"]);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        json(&out.stdout)["backups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_string())
            .collect()
    }

    pub fn plan(&self) -> Planned {
        let out = self.run(&["plan", "--format", "json"]);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        self.with_outside(planned(json(&out.stdout)))
    }

    /// Adds what the fake holds beyond the plan's backups.
    pub fn with_outside(&self, mut planned: Planned) -> Planned {
        let listed: BTreeSet<String> = planned.json["policies"][0]["backups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_string())
            .collect();
        planned.outside = self.held().difference(&listed).cloned().collect();
        planned
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
        let all = planned.all();
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
