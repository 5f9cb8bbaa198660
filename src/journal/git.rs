//! The commit a policy file's git checkout is at, read from `.git` directly (no `git` binary on
//! the host is needed): `HEAD`, loose refs, `packed-refs`, and worktrees' `gitdir:` files.

use std::fs;
use std::path::{Path, PathBuf};

/// The commit of the checkout holding `file`, if it is in one. The working tree may differ
/// from that commit; the journal's file hash tells what was actually read.
pub fn head_commit(file: &Path) -> Option<String> {
    let start = fs::canonicalize(file).ok()?;
    let git_dir = start.ancestors().skip(1).find_map(git_dir_of)?;
    let head = fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let head = head.trim();
    match head.strip_prefix("ref:") {
        None => is_commit(head).then(|| head.to_string()),
        Some(name) => resolve_ref(&git_dir, name.trim()),
    }
}

/// `.git` as a folder, or a worktree's `.git` file pointing at its git dir.
fn git_dir_of(dir: &Path) -> Option<PathBuf> {
    let dot_git = dir.join(".git");
    let meta = fs::metadata(&dot_git).ok()?;
    if meta.is_dir() {
        return Some(dot_git);
    }
    let text = fs::read_to_string(&dot_git).ok()?;
    let target = text.trim().strip_prefix("gitdir:")?.trim();
    Some(dir.join(target))
}

fn resolve_ref(git_dir: &Path, name: &str) -> Option<String> {
    if name.split('/').any(|part| part.is_empty() || part == "..") {
        return None;
    }
    // A worktree keeps HEAD to itself and shares refs with the main git dir.
    let common = fs::read_to_string(git_dir.join("commondir"))
        .ok()
        .map(|c| git_dir.join(c.trim()))
        .unwrap_or_else(|| git_dir.to_path_buf());
    for dir in [git_dir, common.as_path()] {
        if let Ok(text) = fs::read_to_string(dir.join(name)) {
            let commit = text.trim();
            if is_commit(commit) {
                return Some(commit.to_string());
            }
        }
    }
    let packed = fs::read_to_string(common.join("packed-refs")).ok()?;
    packed.lines().find_map(|line| {
        let (commit, reference) = line.split_once(' ')?;
        (reference == name && is_commit(commit)).then(|| commit.to_string())
    })
}

fn is_commit(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef01234567";
    const B: &str = "89abcdef0123456789abcdef0123456789abcdef";

    fn repo() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policies/p.yaml");
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, "name: p\n").unwrap();
        fs::create_dir_all(dir.path().join(".git/refs/heads")).unwrap();
        (dir, file)
    }

    #[test]
    fn reads_a_branch_a_packed_ref_and_a_detached_head() {
        let (dir, file) = repo();
        let git = dir.path().join(".git");
        fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        fs::write(git.join("refs/heads/main"), format!("{A}\n")).unwrap();
        assert_eq!(head_commit(&file).as_deref(), Some(A));

        fs::remove_file(git.join("refs/heads/main")).unwrap();
        fs::write(
            git.join("packed-refs"),
            format!("# pack-refs with: peeled\n{B} refs/heads/main\n"),
        )
        .unwrap();
        assert_eq!(head_commit(&file).as_deref(), Some(B));

        fs::write(git.join("HEAD"), format!("{A}\n")).unwrap();
        assert_eq!(head_commit(&file).as_deref(), Some(A));
    }

    #[test]
    fn follows_a_worktree_file_and_is_none_outside_a_checkout() {
        let (dir, _) = repo();
        let main = dir.path().join(".git");
        fs::write(main.join("refs/heads/topic"), format!("{B}\n")).unwrap();
        let worktree = main.join("worktrees/wt");
        fs::create_dir_all(&worktree).unwrap();
        fs::write(worktree.join("HEAD"), "ref: refs/heads/topic\n").unwrap();
        fs::write(worktree.join("commondir"), "../..\n").unwrap();
        let checkout = dir.path().join("wt");
        fs::create_dir_all(&checkout).unwrap();
        fs::write(
            checkout.join(".git"),
            format!("gitdir: {}\n", worktree.display()),
        )
        .unwrap();
        let policy = checkout.join("p.yaml");
        fs::write(&policy, "name: p\n").unwrap();
        assert_eq!(head_commit(&policy).as_deref(), Some(B));

        let outside = tempfile::tempdir().unwrap();
        let lone = outside.path().join("p.yaml");
        fs::write(&lone, "name: p\n").unwrap();
        assert_eq!(head_commit(&lone), None);
    }
}
