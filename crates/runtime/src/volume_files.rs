//! Writes a projected volume's files the way the kubelet's atomic writer does, so a
//! container never sees half an update: the files go into a fresh `..<stamp>` directory,
//! `..data` is switched to it with one rename, and each top-level name is a symlink
//! through `..data`. Also sets up hostPath sources per their `type`.

use crate::volume_source::File;
use std::io::Write;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

const DATA: &str = "..data";

/// Makes `dir` hold exactly `files` (paths relative to it).
pub fn write_atomic(dir: &Path, files: &[File]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let stamp = format!("..{}", chrono::Utc::now().format("%Y_%m_%d_%H_%M_%S.%f"));
    let fresh = dir.join(&stamp);
    std::fs::create_dir(&fresh)?;
    for f in files {
        let rel = Path::new(&f.path);
        if rel.is_absolute() || rel.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("volume file path {:?} must be relative without '..'", f.path)));
        }
        let path = fresh.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut out = std::fs::File::create(&path)?;
        out.write_all(&f.data)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(f.mode))?;
    }
    // Switch ..data to the new payload in one step.
    let old = std::fs::read_link(dir.join(DATA)).ok();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(&stamp, &tmp)?;
    std::fs::rename(&tmp, dir.join(DATA))?;
    // The user-visible names: one symlink per top-level entry, through ..data.
    let mut tops: Vec<String> = files.iter().filter_map(|f| f.path.split('/').next().map(str::to_string)).collect();
    tops.sort();
    tops.dedup();
    for t in &tops {
        let link = dir.join(t);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(Path::new(DATA).join(t), &link)?;
        }
    }
    // Names that are gone, and the previous payload.
    for e in std::fs::read_dir(dir)?.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with("..") && !tops.contains(&name) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    if let Some(old) = old {
        if old != Path::new(&stamp) {
            let _ = std::fs::remove_dir_all(dir.join(old));
        }
    }
    Ok(())
}

/// Checks (and for the *OrCreate types, makes) a hostPath source as its `type` says.
pub fn host_path(path: &Path, type_: &str, volume: &str) -> Result<PathBuf, String> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata(path);
    let bad = |want: &str| Err(format!("volume {volume:?}: hostPath type check failed: {} is not {want}", path.display()));
    match (type_, &meta) {
        ("DirectoryOrCreate", Err(_)) => {
            std::fs::create_dir_all(path).map_err(|e| format!("volume {volume:?}: creating hostPath {}: {e}", path.display()))?;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755));
        }
        ("FileOrCreate", Err(_)) => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| format!("volume {volume:?}: creating hostPath {}: {e}", parent.display()))?;
            }
            std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| format!("volume {volume:?}: creating hostPath {}: {e}", path.display()))?;
        }
        (_, Err(_)) => return Err(format!("volume {volume:?}: hostPath {} does not exist on this host: create it, or use type DirectoryOrCreate/FileOrCreate", path.display())),
        ("Directory" | "DirectoryOrCreate", Ok(m)) if !m.is_dir() => return bad("a directory"),
        ("File" | "FileOrCreate", Ok(m)) if !m.is_file() => return bad("a file"),
        ("Socket", Ok(m)) if !m.file_type().is_socket() => return bad("a socket"),
        ("CharDevice", Ok(m)) if !m.file_type().is_char_device() => return bad("a character device"),
        ("BlockDevice", Ok(m)) if !m.file_type().is_block_device() => return bad("a block device"),
        _ => {}
    }
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, data: &str, mode: u32) -> File {
        File { path: path.into(), data: data.as_bytes().to_vec(), mode }
    }

    #[test]
    fn updates_switch_the_payload_and_drop_removed_names() {
        let d = tempfile::tempdir().unwrap();
        write_atomic(d.path(), &[file("a.conf", "one", 0o644), file("sub/b", "two", 0o600)]).unwrap();
        assert_eq!(std::fs::read_to_string(d.path().join("a.conf")).unwrap(), "one");
        assert_eq!(std::fs::read_to_string(d.path().join("sub/b")).unwrap(), "two");
        let mode = std::fs::metadata(d.path().join("sub/b")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_link(d.path().join("a.conf")).unwrap(), Path::new("..data/a.conf"));
        write_atomic(d.path(), &[file("a.conf", "uno", 0o644)]).unwrap();
        assert_eq!(std::fs::read_to_string(d.path().join("a.conf")).unwrap(), "uno");
        assert!(!d.path().join("sub").exists());
        let payloads = std::fs::read_dir(d.path()).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with("..2")).count();
        assert_eq!(payloads, 1, "the old payload is removed");
    }

    #[test]
    fn host_path_types_are_checked_and_or_create_makes_them() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        std::fs::write(&f, "x").unwrap();
        assert!(host_path(&f, "Directory", "v").unwrap_err().contains("is not a directory"));
        assert!(host_path(&f, "File", "v").is_ok());
        assert!(host_path(&d.path().join("missing"), "", "v").unwrap_err().contains("does not exist"));
        assert!(host_path(&d.path().join("made/here"), "DirectoryOrCreate", "v").is_ok());
        assert!(d.path().join("made/here").is_dir());
        assert!(host_path(&d.path().join("made/file"), "FileOrCreate", "v").is_ok());
        assert!(d.path().join("made/file").is_file());
    }
}
