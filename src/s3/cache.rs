//! The local metadata cache of an S3 DEST: what tandem knows of each object it has
//! seen or written (ETag, size, last-modified time, and the user metadata that a
//! listing does not return: mtime, mode, kind, a symlink's target).
//!
//! ListObjectsV2 returns each object's key, size, ETag and LastModified, not its user
//! metadata. Asking for that (a HEAD per object) would make a no-op run cost one
//! request per file. So a scan trusts a cached entry only while the listing shows the
//! same ETag, size and LastModified: any write to the key, a metadata-only one
//! included (a CopyObject onto itself), changes LastModified, so a cached entry that
//! still matches describes the object as it is. Anything else (no entry, or any of
//! the three differs) is read again with HEAD, and the cache is updated. LastModified
//! has whole seconds: a metadata-only change (same contents, so the same ETag) made by
//! another program within the same second as the state cached is not seen until the
//! object changes again or the cache is removed.
//!
//! Directory markers are the exception: their LastModified is not compared (some
//! servers, SeaweedFS among them, move it as objects below change), and where the
//! server keeps no user metadata on markers (SeaweedFS again) a directory's
//! attributes are the ones tandem last gave it, known from this cache alone.
//!
//! An object tandem has just written is cached with its ETag and size but without a
//! LastModified (PUT does not return one): the first listing that shows the same ETag
//! and size adopts its LastModified. In that window (between tandem's write and its
//! next scan) a metadata-only change by another program to the same contents would go
//! unnoticed once.
//!
//! The cache is one file per endpoint, bucket and prefix, under
//! `$XDG_CACHE_HOME/tandem/s3/` (else `~/.cache/tandem/s3/`), written whole to a
//! temporary and renamed into place. A missing, unreadable or damaged cache only costs
//! HEAD requests.

use std::io::Write;
use std::path::PathBuf;

use rustc_hash::FxHashMap;

use super::ObjKind;

/// What is known of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cached {
    pub etag: String,
    pub size: u64,
    /// LastModified as listed (seconds, nanoseconds); `None` until first listed.
    pub modified: Option<(i64, u32)>,
    pub kind: ObjKind,
    /// The `mtime` metadata; `None` when the object has none.
    pub mtime: Option<(i64, u32)>,
    /// The permission bits of the `mode` metadata; `None` when it has none.
    pub mode: Option<u32>,
    /// A symlink's target (the object's contents).
    pub link: Option<Box<[u8]>>,
}

/// The cache of one DEST.
#[derive(Default)]
pub struct Cache {
    path: Option<PathBuf>,
    header: String,
    map: FxHashMap<String, Cached>,
    dirty: bool,
}

fn dir() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".cache"),
    };
    Some(base.join("tandem").join("s3"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

fn kind_code(k: ObjKind) -> &'static str {
    match k {
        ObjKind::File => "f",
        ObjKind::Dir => "d",
        ObjKind::Symlink => "l",
    }
}

fn parse_line(line: &str) -> Option<(String, Cached)> {
    use serde_json::Value;
    let v: Value = serde_json::from_str(line).ok()?;
    let a = v.as_array()?;
    let pair = |v: &Value| -> Option<Option<(i64, u32)>> {
        match v {
            Value::Null => Some(None),
            Value::Array(p) if p.len() == 2 => {
                Some(Some((p[0].as_i64()?, u32::try_from(p[1].as_u64()?).ok()?)))
            }
            _ => None,
        }
    };
    let kind = match a.get(4)?.as_str()? {
        "f" => ObjKind::File,
        "d" => ObjKind::Dir,
        "l" => ObjKind::Symlink,
        _ => return None,
    };
    let mode = match a.get(6)? {
        Value::Null => None,
        m => Some(u32::try_from(m.as_u64()?).ok()?),
    };
    let link = match a.get(7)? {
        Value::Null => None,
        l => Some(unhex(l.as_str()?)?.into_boxed_slice()),
    };
    Some((
        a.first()?.as_str()?.to_string(),
        Cached {
            etag: a.get(1)?.as_str()?.to_string(),
            size: a.get(2)?.as_u64()?,
            modified: pair(a.get(3)?)?,
            kind,
            mtime: pair(a.get(5)?)?,
            mode,
            link,
        },
    ))
}

impl Cache {
    /// The cache of the prefix `base` of `bucket` at `endpoint` (empty when there is
    /// none or it cannot be read).
    pub fn load(endpoint: &str, bucket: &str, base: &str) -> Cache {
        let header = serde_json::json!({ "tandem-s3-cache": 1, "endpoint": endpoint, "bucket": bucket, "prefix": base })
            .to_string();
        let path = dir()
            .map(|d| d.join(format!("{}.jsonl", &hex(blake3::hash(header.as_bytes()).as_bytes())[..32])));
        let mut cache = Cache { path, header, ..Cache::default() };
        let Some(text) = cache.path.as_ref().and_then(|p| std::fs::read_to_string(p).ok()) else {
            return cache;
        };
        let mut lines = text.lines();
        if lines.next() != Some(cache.header.as_str()) {
            return cache;
        }
        for line in lines {
            if let Some((k, v)) = parse_line(line) {
                cache.map.insert(k, v);
            }
        }
        cache
    }

    pub fn get(&self, key: &str) -> Option<&Cached> {
        self.map.get(key)
    }

    pub fn insert(&mut self, key: String, c: Cached) {
        if self.map.get(&key) != Some(&c) {
            self.map.insert(key, c);
            self.dirty = true;
        }
    }

    pub fn remove(&mut self, key: &str) {
        if self.map.remove(key).is_some() {
            self.dirty = true;
        }
    }

    /// The entry for `key` when the listing shows it unchanged (same ETag and size,
    /// same LastModified, or a LastModified first seen now for an object tandem wrote).
    pub fn valid(
        &mut self,
        key: &str,
        etag: &str,
        size: u64,
        modified: Option<(i64, u32)>,
    ) -> Option<Cached> {
        let c = self.map.get_mut(key)?;
        if c.etag != etag || c.size != size {
            return None;
        }
        if c.kind == ObjKind::Dir {
            // A marker is empty and only its metadata matters, which tandem wrote;
            // some servers (SeaweedFS) move a prefix's LastModified as objects come
            // and go below it, and keep no user metadata on markers at all.
            return Some(c.clone());
        }
        match (c.modified, modified) {
            (Some(a), Some(b)) if a != b => return None,
            (None, Some(b)) => {
                c.modified = Some(b);
                self.dirty = true;
            }
            _ => {}
        }
        Some(c.clone())
    }

    /// Writes the cache out when it changed (best effort: a cache that cannot be
    /// written only costs HEAD requests next time).
    pub fn save(&mut self) {
        if !self.dirty {
            return;
        }
        let Some(path) = self.path.clone() else { return };
        let Some(parent) = path.parent() else { return };
        if std::fs::create_dir_all(parent).is_err() {
            return;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            writeln!(out, "{}", self.header)?;
            let pair = |p: Option<(i64, u32)>| match p {
                Some((s, n)) => serde_json::json!([s, n]),
                None => serde_json::Value::Null,
            };
            for (k, c) in &self.map {
                let line = serde_json::json!([
                    k,
                    c.etag,
                    c.size,
                    pair(c.modified),
                    kind_code(c.kind),
                    pair(c.mtime),
                    c.mode,
                    c.link.as_ref().map(|l| hex(l)),
                ]);
                writeln!(out, "{line}")?;
            }
            out.into_inner().map_err(|e| e.into_error())?.sync_data()?;
            std::fs::rename(&tmp, &path)
        };
        if write().is_ok() {
            self.dirty = false;
        } else {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let c = Cached {
            etag: "\"abc\"".into(),
            size: 3,
            modified: Some((5, 6)),
            kind: ObjKind::Symlink,
            mtime: None,
            mode: Some(0o777),
            link: Some(b"t\xff".to_vec().into()),
        };
        let line = serde_json::json!(["k\n", c.etag, 3, [5, 6], "l", null, 0o777, hex(b"t\xff")]).to_string();
        assert_eq!(parse_line(&line), Some(("k\n".to_string(), c)));
        assert_eq!(parse_line("[1]"), None);
    }

    #[test]
    fn validity() {
        let mut cache = Cache::default();
        let c = Cached {
            etag: "e".into(),
            size: 1,
            modified: None,
            kind: ObjKind::File,
            mtime: Some((1, 2)),
            mode: Some(0o644),
            link: None,
        };
        cache.insert("k".into(), c);
        assert!(cache.valid("k", "e", 1, Some((9, 0))).is_some());
        assert!(cache.valid("k", "e", 1, Some((9, 0))).is_some());
        assert!(cache.valid("k", "e", 1, Some((10, 0))).is_none());
        assert!(cache.valid("k", "x", 1, Some((9, 0))).is_none());
        assert!(cache.valid("k", "e", 2, Some((9, 0))).is_none());
    }
}
