//! The files of `state_dir` (the journal, the lock files, the `locks` folder): created private
//! (folders 0700, files 0600), never opened through a symlink, and owned by whoever owns
//! `state_dir`. Does file I/O.
//!
//! Why the owner: the daemon runs as its own user (`DynamicUser=yes` in the package), and an
//! operator's `sudo retentiond run` runs as root. A file root created in the daemon's folder
//! would lock the daemon out of it for good; so a file or folder whose owner is not the state
//! folder's is given to that owner (which only root can do: for anyone else the attempt is
//! refused by the kernel and changes nothing). SQLite does the same for the journal's `-wal`
//! and `-shm` files, after the journal itself.

use super::{JournalError, Result};
use std::fs::{self, File};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The owner (uid, gid) of `state_dir`, whom its files belong to.
fn owner(state_dir: &Path) -> Result<(u32, u32)> {
    let meta = fs::metadata(state_dir).map_err(|e| {
        JournalError(format!(
            "cannot read the state folder {}: {e}",
            state_dir.display()
        ))
    })?;
    Ok((meta.uid(), meta.gid()))
}

/// The error for a journal this user may not read: the file, the reason, whose folder it is,
/// and what to run instead.
pub fn unreadable(state_dir: &Path, path: &Path, e: &std::io::Error) -> JournalError {
    let owner = fs::metadata(state_dir)
        .map(|m| {
            format!(
                "; the state folder {} belongs to uid {} (mode {:o}): run this as that user (`sudo -u '#{}' retentiond …`) or as root",
                state_dir.display(),
                m.uid(),
                m.mode() & 0o7777,
                m.uid()
            )
        })
        .unwrap_or_default();
    JournalError(format!(
        "cannot read the journal {}: {e}{owner}",
        path.display()
    ))
}

/// Refuses a symlink where a state file or folder belongs: whoever may write the state folder
/// could otherwise point it at a file of root's, which a root run would then overwrite.
fn refuse_symlink(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(JournalError(format!(
            "{} is a symbolic link; retentiond never opens a state file through one (someone else may have made it): remove it, and look at who can write the state folder",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Creates a folder (and its parents) readable only by its owner. `state_dir` itself may be a
/// symlink (systemd's `DynamicUser=` makes `/var/lib/NAME` one); a folder inside it may not.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    if fs::metadata(dir).is_ok_and(|m| !m.is_dir()) {
        return Err(JournalError(format!(
            "the state folder {} is a file, not a folder; set state_dir in the config to a folder (it is made if missing)",
            dir.display()
        )));
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            JournalError(format!(
                "cannot create the state folder {}: {e}; set state_dir in the config to a writable folder",
                dir.display()
            ))
        })
}

/// Creates `state_dir/name`, a folder of the state folder's owner, readable only by it.
pub fn private_subdir(state_dir: &Path, name: &str) -> Result<std::path::PathBuf> {
    let dir = state_dir.join(name);
    refuse_symlink(&dir)?;
    create_private_dir(&dir)?;
    refuse_symlink(&dir)?;
    let (uid, gid) = owner(state_dir)?;
    let meta = fs::symlink_metadata(&dir)
        .map_err(|e| JournalError(format!("cannot read {}: {e}", dir.display())))?;
    if meta.uid() != uid {
        // Only root may give it away; anyone else is refused and keeps what it has.
        let _ = std::os::unix::fs::lchown(&dir, Some(uid), Some(gid));
    }
    Ok(dir)
}

/// Opens (creating) a state file for reading and writing: never through a symlink, only a
/// regular file, mode 0600, owned by the state folder's owner.
pub fn open_private(state_dir: &Path, path: &Path) -> Result<File> {
    let cannot = |e: std::io::Error| {
        let hint = match e.raw_os_error() {
            Some(libc::ELOOP) => {
                " (it is a symbolic link; retentiond never opens a state file through one: remove it, and look at who can write the state folder)"
            }
            _ => "",
        };
        JournalError(format!("cannot open {}: {e}{hint}", path.display()))
    };
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(JournalError(format!(
            "{} is not a regular file; remove it",
            path.display()
        )));
    }
    let (uid, gid) = owner(state_dir)?;
    if meta.uid() != uid {
        let _ = std::os::unix::fs::fchown(&file, Some(uid), Some(gid));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        let _ = file.set_permissions(fs::Permissions::from_mode(0o600));
    }
    Ok(file)
}

/// Makes the journal file private before SQLite opens it (SQLite then gives its `-wal` and
/// `-shm` files the journal's owner and mode), and refuses symlinks in their places.
pub fn prepare_journal(state_dir: &Path, path: &Path) -> Result<()> {
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = path.as_os_str().to_os_string();
        side.push(suffix);
        refuse_symlink(Path::new(&side))?;
    }
    open_private(state_dir, path).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_in_a_state_files_place_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let state = dir.path().join("state");
        create_private_dir(&state).unwrap();
        let lock = state.join("p.lock");
        std::os::unix::fs::symlink(&victim, &lock).unwrap();
        let err = open_private(&state, &lock).unwrap_err().to_string();
        assert!(err.contains("is a symbolic link"), "{err}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");

        std::os::unix::fs::symlink(&victim, state.join("locks")).unwrap();
        let err = private_subdir(&state, "locks").unwrap_err().to_string();
        assert!(err.contains("locks is a symbolic link"), "{err}");

        let journal = state.join("journal.sqlite");
        std::os::unix::fs::symlink(&victim, state.join("journal.sqlite-wal")).unwrap();
        let err = prepare_journal(&state, &journal).unwrap_err().to_string();
        assert!(
            err.contains("journal.sqlite-wal is a symbolic link"),
            "{err}"
        );
    }

    #[test]
    fn state_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        create_private_dir(&state).unwrap();
        let file = state.join("journal.sqlite");
        fs::write(&file, "").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        prepare_journal(&state, &file).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&private_subdir(&state, "locks").unwrap()), 0o700);
        assert_eq!(mode(&state), 0o700);
    }
}
