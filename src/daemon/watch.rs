//! Watches the config file and the policy files and folders (inotify, through `notify`) and
//! signals each relevant change; the daemon debounces the signals into one reload. Folders
//! are watched, not files, so an editor's save by rename and a `git checkout` are seen.

use notify::{EventKind, RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// Keeps the watches alive; dropping it stops them.
pub struct Watch {
    _watcher: notify::RecommendedWatcher,
}

/// Watches `config` and the `policies` paths; sends on `changed` for every change to the
/// config, to a `*.yaml`/`*.yml` file, or to a policy folder itself. Hidden files (editor swap
/// files) and reads are ignored.
pub fn watch(
    config: &Path,
    policies: &[PathBuf],
    changed: mpsc::UnboundedSender<()>,
) -> Result<Watch, String> {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let config = absolute(config);
    let policies: Vec<PathBuf> = policies.iter().map(|p| absolute(p)).collect();
    let relevant = {
        let (config, policies) = (config.clone(), policies.clone());
        move |path: &Path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            path == config
                || policies.iter().any(|p| p == path)
                || (!name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml")))
        }
    };
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else {
            // An overflowed or failed watch: reload to be sure nothing was missed.
            let _ = changed.send(());
            return;
        };
        if !matches!(event.kind, EventKind::Access(_)) && event.paths.iter().any(|p| relevant(p)) {
            let _ = changed.send(());
        }
    })
    .map_err(|e| format!("cannot watch files for changes: {e}"))?;
    let mut folders: Vec<(PathBuf, RecursiveMode)> = Vec::new();
    let parent = |p: &Path| p.parent().map(Path::to_path_buf).unwrap_or_default();
    folders.push((parent(&config), RecursiveMode::NonRecursive));
    for path in &policies {
        if path.is_dir() {
            folders.push((path.clone(), RecursiveMode::Recursive));
            // The folder's parent sees the folder itself replaced.
            folders.push((parent(path), RecursiveMode::NonRecursive));
        } else {
            folders.push((parent(path), RecursiveMode::NonRecursive));
        }
    }
    folders.sort();
    folders.dedup();
    for (folder, mode) in folders {
        watcher
            .watch(&folder, mode)
            .map_err(|e| format!("cannot watch {} for changes: {e}", folder.display()))?;
    }
    Ok(Watch { _watcher: watcher })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn changes(rx: &mut mpsc::UnboundedReceiver<()>) -> usize {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut n = 0;
        while rx.try_recv().is_ok() {
            n += 1;
        }
        n
    }

    #[tokio::test]
    async fn sees_policy_and_config_changes_and_ignores_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("retentiond.yaml");
        let policies = dir.path().join("policies");
        std::fs::create_dir_all(policies.join("team")).unwrap();
        std::fs::write(&config, "policies: policies\n").unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _watch = watch(&config, std::slice::from_ref(&policies), tx).unwrap();

        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        std::fs::write(dir.path().join("state/journal.sqlite"), "x").unwrap();
        std::fs::write(policies.join(".p.yaml.swp"), "x").unwrap();
        std::fs::write(policies.join("notes.txt"), "x").unwrap();
        assert_eq!(changes(&mut rx).await, 0, "state, swap and other files");

        std::fs::write(policies.join("team/p.yaml"), "name: p\n").unwrap();
        assert!(changes(&mut rx).await > 0, "a policy in a subfolder");
        // An editor's save: write a temporary file, rename it over the policy.
        std::fs::write(policies.join(".p.yaml.tmp"), "name: q\n").unwrap();
        std::fs::rename(policies.join(".p.yaml.tmp"), policies.join("team/p.yaml")).unwrap();
        assert!(changes(&mut rx).await > 0, "a rename over the policy");
        std::fs::write(&config, "policies: [policies]\n").unwrap();
        assert!(changes(&mut rx).await > 0, "the config");
    }
}
