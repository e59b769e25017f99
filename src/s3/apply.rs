//! Executing a plan on an S3 prefix, with the local apply's order: deletions first
//! within a directory, then everything else; many requests in flight.
//!
//! - a file is read whole (checked unchanged) and sent in one PUT with its `mtime` and
//!   `mode` metadata; from [`MULTIPART_THRESHOLD`] up it is a multipart upload, parts
//!   read in order and sent a few at once, completed only when every part is in and
//!   SOURCE is unchanged, aborted otherwise: an object appears only whole;
//! - a new directory is its marker `path/` (zero bytes, its mtime and mode), put
//!   before its contents; a directory's changed attributes are a new marker;
//! - a symlink is an object whose contents are its target;
//! - new attributes of a file are a CopyObject of the object onto itself with the new
//!   metadata (no upload);
//! - a rename (watch mode) is a server-side CopyObject and a DeleteObject per object.
//!
//! Every failure is reported with its path and the run goes on.

use std::io::{self, Read};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective};
use futures_util::future::LocalBoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};

use super::cache::Cached;
use super::{metadata_for, ObjKind, S3Tree, MULTIPART_THRESHOLD, PARTS_IN_FLIGHT, PART_SIZE};
use crate::apply::{ApplyOptions, COPY_ATTEMPTS};
use crate::ordered::{Ordered, Slots};
use crate::outcome::{Failures, Outcome};
use crate::plan::{ChangeKind, DirPlan, Op};
use crate::relpath::join;
use crate::report::{Reporter, Side};
use crate::source::{Source, SourceFile};
use crate::sys::{self, Meta};

/// Files from this size up also take one of the few large-file slots, so that the
/// memory held by files read whole stays bounded.
const BIG: u64 = 1 << 20;

/// Operations on files started at a time, in the whole tree (`join::Starts`).
const STARTED: usize = 4 * super::OP_SLOTS;

struct Applier<'a> {
    tree: &'a S3Tree,
    /// SOURCE's files, opened in the directories held open.
    files: crate::source::Opener<'a>,
    /// Permits to start an operation on a file.
    started: crate::join::Starts,
    rep: &'a Reporter,
    vanished_ok: bool,
    failures: Failures,
    /// Itemized changes in the dry run's path order (`ordered`).
    seq: Ordered<'a>,
    slots: Slots,
}

fn interrupted() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "interrupted by a signal; not copied")
}

/// Applies a directory plan at `base`. Per-entry failures are reported.
pub fn apply(
    tree: &S3Tree,
    dp: &DirPlan,
    base: &[u8],
    source: &dyn Source,
    rep: &Reporter,
    opts: ApplyOptions,
) -> io::Result<Outcome> {
    let slots = Slots::of(dp);
    let a = Applier {
        tree,
        files: crate::source::Opener::new(source),
        started: crate::join::Starts::new(STARTED),
        rep,
        vanished_ok: opts.vanished_ok,
        failures: Failures::default(),
        seq: Ordered::new(rep),
        slots,
    };
    tree.block(async {
        let attrs_set = a.dir(dp, base.to_vec(), false, 0).await;
        a.seq.plan_done(&a.slots, dp, base, attrs_set);
    });
    tree.save_cache();
    if let Some(d) = tree.direct_path() {
        let (taken, passed, off) = d.take_counts();
        if taken + passed > 0 || off.is_some() {
            let off = off.map_or(String::new(), |why| {
                format!("; direct PUTs are off since {why}, the SDK sends them")
            });
            rep.debug(&format!("S3: {taken} PUTs sent directly, {passed} passed to the SDK{off}"));
        }
    }
    let throttled = tree.throttled_since_told();
    if throttled > 0 {
        rep.notice(&format!(
            "the S3 server asked to slow down {throttled} time{} (throttling); requests are retried with back-off, up to {} attempts each",
            if throttled == 1 { "" } else { "s" },
            tree.attempts()
        ));
    }
    Ok(a.failures.into_outcome())
}

/// URL-encodes a `bucket/key` for CopyObject's `x-amz-copy-source`.
fn copy_source(bucket: &str, key: &str) -> String {
    format!("{bucket}/{}", super::direct::encode_key(key))
}

impl S3Tree {
    /// PUTs an object with `meta`'s metadata; returns its ETag.
    /// Directly when it can (`direct`), else (or when that is not taken) by the SDK.
    async fn put(&self, key: &str, body: Vec<u8>, meta: &Meta, kind: ObjKind) -> io::Result<String> {
        let size = body.len() as u64;
        let body = bytes::Bytes::from(body);
        let metadata = metadata_for(meta, kind);
        let mut after_direct = None;
        if let Some(direct) = self.direct() {
            match direct.put(key, &body, &metadata).await {
                Ok(etag) => {
                    self.remember(key, &etag, size, meta, kind, None);
                    return Ok(etag);
                }
                Err(miss) => {
                    if miss == super::direct::Miss::Throttled {
                        self.count_throttled();
                    }
                    if miss.backs_off() {
                        tokio::time::sleep(super::direct::back_off(super::client::INITIAL_BACKOFF)).await;
                    }
                    after_direct = Some(self.after_direct());
                }
            }
        }
        let req = self
            .client()
            .put_object()
            .bucket(self.bucket())
            .key(key)
            .set_metadata(Some(metadata))
            .body(ByteStream::from(body));
        let out = match after_direct {
            Some(conf) => req.customize().config_override(conf).send().await,
            None => req.send().await,
        }
        .map_err(|e| self.err(e))?;
        let etag = super::etag(out.e_tag());
        self.remember(key, &etag, size, meta, kind, None);
        Ok(etag)
    }

    /// Records what tandem wrote (see `cache`).
    fn remember(&self, key: &str, etag: &str, size: u64, meta: &Meta, kind: ObjKind, link: Option<&[u8]>) {
        self.cache().insert(
            key.to_string(),
            Cached {
                etag: etag.to_string(),
                size,
                modified: None,
                kind,
                mtime: Some((meta.mtime_sec, meta.mtime_nsec)),
                mode: Some(meta.mode & 0o7777),
                link: link.map(Box::from),
            },
        );
    }

    async fn delete_key(&self, key: &str) -> io::Result<()> {
        self.client().delete_object().bucket(self.bucket()).key(key).send().await.map_err(|e| self.err(e))?;
        self.cache().remove(key);
        Ok(())
    }

    /// Server-side copy of `from` to `to`, metadata kept (`replace`: replaced).
    async fn copy_key(&self, from: &str, to: &str, replace: Option<(&Meta, ObjKind)>) -> io::Result<()> {
        let mut req = self
            .client()
            .copy_object()
            .bucket(self.bucket())
            .key(to)
            .copy_source(copy_source(self.bucket(), from));
        if let Some((meta, kind)) = replace {
            req = req
                .metadata_directive(MetadataDirective::Replace)
                .set_metadata(Some(metadata_for(meta, kind)));
        }
        let out = req.send().await.map_err(|e| self.err(e))?;
        let etag = super::etag(out.copy_object_result().and_then(|r| r.e_tag()));
        let old = self.cache().get(from).cloned();
        match (old, replace) {
            (Some(mut c), r) => {
                c.etag = etag;
                c.modified = None;
                if let Some((meta, _)) = r {
                    c.mtime = Some((meta.mtime_sec, meta.mtime_nsec));
                    c.mode = Some(meta.mode & 0o7777);
                }
                self.cache().insert(to.to_string(), c);
            }
            // Not known: the next scan reads it with HEAD.
            (None, _) => self.cache().remove(to),
        }
        Ok(())
    }
}

/// Renames `from` to `to` inside the prefix: a file or symlink by a server-side copy
/// and a delete; a directory object by object (its marker last).
pub fn rename(tree: &S3Tree, from: &[u8], to: &[u8]) -> io::Result<()> {
    let r = tree.block(async {
        let (fk, tk) = (tree.key(from, false)?, tree.key(to, false)?);
        let (fp, tp) = (tree.key(from, true)?, tree.key(to, true)?);
        // A directory first (SeaweedFS answers a HEAD of a prefix's name).
        let (objects, _) = super::scan::list_page_all(tree, &fp, false).await?;
        if objects.is_empty() {
            tree.copy_key(&fk, &tk, None).await?;
            return tree.delete_key(&fk).await;
        }
        for o in &objects {
            let Some(rest) = o.key.strip_prefix(&fp) else { continue };
            let target = format!("{tp}{rest}");
            if target.len() > super::MAX_KEY {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a key under the new name would be too long",
                ));
            }
        }
        let (fp, tp) = (&fp, &tp);
        let copies = objects.iter().filter_map(|o| {
            let rest = o.key.strip_prefix(fp.as_str())?;
            Some(async move {
                let _slot = tree.op_slots.acquire().await.map_err(io::Error::other)?;
                let to = format!("{tp}{rest}");
                if o.key.ends_with('/') {
                    // A marker is put anew, with the attributes it had.
                    let cached = tree.cache().get(&o.key).cloned();
                    let meta = cached.map_or(Meta { mode: 0o755, ..Meta::default() }, |c| Meta {
                        mtime_sec: c.mtime.map_or(0, |m| m.0),
                        mtime_nsec: c.mtime.map_or(0, |m| m.1),
                        mode: c.mode.unwrap_or(0o755),
                        ..Meta::default()
                    });
                    return tree.put(&to, Vec::new(), &meta, ObjKind::Dir).await.map(|_| ());
                }
                tree.copy_key(&o.key, &to, None).await
            })
        });
        for r in crate::join::all(copies).await {
            r?;
        }
        // Objects first, then the markers, deepest first.
        let (markers, files): (Vec<_>, Vec<_>) = objects.iter().partition(|o| o.key.ends_with('/'));
        let deletes = files.iter().map(|o| async move {
            let _slot = tree.op_slots.acquire().await.map_err(io::Error::other)?;
            tree.delete_key(&o.key).await
        });
        for r in crate::join::all(deletes).await {
            r?;
        }
        let mut markers = markers;
        markers.sort_by_key(|o| std::cmp::Reverse(o.key.len()));
        for o in markers {
            tree.delete_key(&o.key).await?;
        }
        Ok(())
    });
    tree.save_cache();
    r
}

impl Applier<'_> {
    fn fail(&self, side: Side, path: &[u8], err: &io::Error) {
        self.rep.error(side, path, &sys::describe(err));
        self.failures.failed(path);
    }

    /// Runs one directory's plan; false when its own attributes were not set.
    /// `made`: its marker was just put with its final attributes.
    /// Its operations' slots start at `slot` (see `ordered`).
    fn dir<'s>(&'s self, dp: &'s DirPlan, rel: Vec<u8>, made: bool, slot: u64) -> LocalBoxFuture<'s, bool> {
        async move {
            let here: &[u8] = if rel.is_empty() { b"." } else { &rel };
            let n_del = dp.ops.iter().take_while(|op| op.is_delete()).count();
            let ops = self.slots.numbered(dp, slot);
            let (deletes, rest) = ops.split_at(n_del);
            crate::join::all(deletes.iter().map(|&(s, op)| self.start(op, &rel, s))).await;
            crate::join::all(rest.iter().map(|&(s, op)| self.start(op, &rel, s))).await;
            if sys::stopping() {
                return false;
            }
            // A prefix's attributes do not change when objects come and go below it:
            // only attributes that differ are put again.
            if let (Some(meta), true, false) = (&dp.set_meta, dp.meta_changed, made) {
                let _slot = self.tree.op_slots.acquire().await;
                if let Err(e) = self.put_marker(&rel, meta).await {
                    self.fail(Side::Dest, here, &e);
                    return false;
                }
            }
            true
        }
        .boxed_local()
    }

    /// Puts directory `rel`'s marker (the bucket's root has none: its attributes go to
    /// the cache alone).
    async fn put_marker(&self, rel: &[u8], meta: &Meta) -> io::Result<()> {
        if rel.is_empty() && self.tree.base().is_empty() {
            self.tree.remember("", "", 0, meta, ObjKind::Dir, None);
            return Ok(());
        }
        let key = self.tree.dir_prefix(rel)?;
        self.tree.put(&key, Vec::new(), meta, ObjKind::Dir).await.map(|_| ())
    }

    /// [`Applier::op`], once a start permit is free (`join::Starts`; a directory's own
    /// operation at once).
    async fn start(&self, op: &Op, rel: &[u8], slot: u64) {
        self.started.run(op.has_sub(), || self.op(op, rel, slot)).await
    }

    /// Runs one operation, whose slots start at `slot`; they are all finished after it.
    async fn op(&self, op: &Op, rel: &[u8], slot: u64) {
        self.op_at(op, rel, slot).await;
        self.seq.finish(slot, slot + self.slots.of_op(op));
    }

    async fn op_at(&self, op: &Op, rel: &[u8], slot: u64) {
        if sys::stopping() {
            return;
        }
        let path = join(rel, op.name());
        // A directory's contents start after its opening slot and end before its
        // closing one.
        let (inner, close) = (slot + 1, slot + self.slots.of_op(op).saturating_sub(1));
        match op {
            Op::Delete { dir, sub, keep, .. } => self.delete(&path, *dir, sub, *keep, inner, close).await,
            Op::Mkdir { sub, .. } => {
                let meta = sub.set_meta.unwrap_or(Meta { mode: 0o755, ..Meta::default() });
                let made = {
                    let _slot = self.tree.op_slots.acquire().await;
                    self.put_marker(&path, &meta).await
                };
                match made {
                    Ok(()) => self.seq.change(slot, &path, &ChangeKind::Mkdir),
                    Err(e) => return self.fail(Side::Dest, &path, &e),
                }
                self.seq.finish(slot, inner);
                self.dir(sub, path, true, inner).await;
            }
            Op::Enter { sub, .. } => {
                self.seq.finish(slot, inner);
                if self.dir(sub, path.clone(), false, inner).await && sub.meta_changed {
                    self.seq.change(close, &path, &ChangeKind::Meta);
                }
            }
            Op::Copy { .. } => {
                let _slot = self.tree.op_slots.acquire().await;
                self.rep.progress().current(&path);
                match self.copy(&path).await {
                    Ok(bytes) => self.seq.change(slot, &path, &ChangeKind::Copy { bytes }),
                    Err((side, e)) => {
                        if !crate::apply::vanished_before_copy(
                            self.rep,
                            &self.failures,
                            self.vanished_ok,
                            side,
                            &path,
                            &e,
                        ) {
                            self.fail(side, &path, &e)
                        }
                    }
                }
            }
            Op::Symlink { target, meta, .. } => {
                let _slot = self.tree.op_slots.acquire().await;
                let r = async {
                    let key = self.tree.key(&path, false)?;
                    let etag = self.tree.put(&key, target.to_vec(), meta, ObjKind::Symlink).await?;
                    self.tree.remember(
                        &key,
                        &etag,
                        target.len() as u64,
                        meta,
                        ObjKind::Symlink,
                        Some(target),
                    );
                    Ok::<_, io::Error>(())
                };
                match r.await {
                    Ok(()) => self.seq.change(slot, &path, &ChangeKind::Symlink { target: target.clone() }),
                    Err(e) => self.fail(Side::Dest, &path, &e),
                }
            }
            // Symlinks are compared by target only (`keeps_link_attrs`).
            Op::Meta { symlink: true, .. } => {}
            Op::Meta { meta, .. } => {
                let _slot = self.tree.op_slots.acquire().await;
                let r = async {
                    let key = self.tree.key(&path, false)?;
                    self.tree.copy_key(&key, &key, Some((meta, ObjKind::File))).await
                };
                match r.await {
                    Ok(()) => self.seq.change(slot, &path, &ChangeKind::Meta),
                    Err(e) => self.fail(Side::Dest, &path, &e),
                }
            }
        }
    }

    /// Deletes `path`; a directory's contents have the slots from `inner`, its own
    /// deletion is reported at slot `close`.
    async fn delete(&self, path: &[u8], dir: bool, sub: &DirPlan, keep: bool, inner: u64, close: u64) {
        if dir {
            self.dir(sub, path.to_vec(), false, inner).await;
            if keep || sys::stopping() {
                return;
            }
        }
        let r = {
            let _slot = self.tree.op_slots.acquire().await;
            match self.tree.key(path, dir) {
                Ok(key) => self.tree.delete_key(&key).await,
                Err(e) => Err(e),
            }
        };
        match r {
            Ok(()) => self.seq.change(close, path, &ChangeKind::Delete),
            Err(e) => self.fail(Side::Dest, path, &e),
        }
    }

    /// Uploads one file; returns the bytes sent.
    async fn copy(&self, path: &[u8]) -> Result<u64, (Side, io::Error)> {
        let key = self.tree.key(path, false).map_err(|e| (Side::Dest, e))?;
        for _ in 0..COPY_ATTEMPTS {
            let mut src = self.files.open_file(path).map_err(|e| (Side::Source, e))?;
            let meta = src.meta();
            let _big = if meta.size >= BIG { Some(self.tree.large_slots.acquire().await) } else { None };
            let done = if meta.size >= MULTIPART_THRESHOLD {
                self.multipart(&key, &mut *src, &meta).await?
            } else {
                self.single(&key, &mut *src, &meta).await?
            };
            if let Some(n) = done {
                return Ok(n);
            }
        }
        Err(crate::apply::changed_too_often())
    }

    /// One PUT; `None` when SOURCE changed while it was read.
    async fn single(
        &self,
        key: &str,
        src: &mut dyn SourceFile,
        meta: &Meta,
    ) -> Result<Option<u64>, (Side, io::Error)> {
        let mut buf = Vec::with_capacity(meta.size as usize + 1);
        read_up_to(src, &mut buf, meta.size as usize + 1)?;
        if buf.len() as u64 != meta.size || !src.unchanged().map_err(|e| (Side::Source, e))? {
            return Ok(None);
        }
        let n = buf.len() as u64;
        sys::count_copied(n);
        crate::bwlimit::account(n, sys::stopping);
        self.tree.put(key, buf, meta, ObjKind::File).await.map_err(|e| (Side::Dest, e))?;
        Ok(Some(n))
    }

    /// A multipart upload, aborted unless completed; `None` when SOURCE changed.
    async fn multipart(
        &self,
        key: &str,
        src: &mut dyn SourceFile,
        meta: &Meta,
    ) -> Result<Option<u64>, (Side, io::Error)> {
        let tree = self.tree;
        let dest = |e| (Side::Dest, e);
        let created = tree
            .client()
            .create_multipart_upload()
            .bucket(tree.bucket())
            .key(key)
            .set_metadata(Some(metadata_for(meta, ObjKind::File)))
            .send()
            .await
            .map_err(|e| dest(tree.err(e)))?;
        let Some(id) = created.upload_id().map(str::to_string) else {
            return Err(dest(io::Error::other("the server returned no upload id")));
        };
        let r = self.upload_parts(key, &id, src, meta).await;
        let outcome = match r {
            Ok(Some((parts, n))) => {
                let done = tree
                    .client()
                    .complete_multipart_upload()
                    .bucket(tree.bucket())
                    .key(key)
                    .upload_id(&id)
                    .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                    .send()
                    .await;
                match done {
                    Ok(out) => {
                        let etag = super::etag(out.e_tag());
                        tree.remember(key, &etag, n, meta, ObjKind::File, None);
                        return Ok(Some(n));
                    }
                    Err(e) => Err(dest(tree.err(e))),
                }
            }
            other => other.map(|_| None),
        };
        // Not completed: nothing may be left behind.
        let _ =
            tree.client().abort_multipart_upload().bucket(tree.bucket()).key(key).upload_id(&id).send().await;
        outcome
    }

    /// Reads and sends the parts; `None` when SOURCE changed meanwhile.
    async fn upload_parts(
        &self,
        key: &str,
        id: &str,
        src: &mut dyn SourceFile,
        meta: &Meta,
    ) -> Result<Option<(Vec<CompletedPart>, u64)>, (Side, io::Error)> {
        let tree = self.tree;
        let mut inflight = FuturesUnordered::new();
        let mut parts = Vec::new();
        let mut sent = 0u64;
        let mut read = 0u64;
        let mut number = 0i32;
        let mut eof = false;
        loop {
            while inflight.len() < PARTS_IN_FLIGHT && !eof {
                let mut buf = Vec::with_capacity(PART_SIZE);
                read_up_to(src, &mut buf, PART_SIZE)?;
                if buf.len() < PART_SIZE {
                    eof = true;
                }
                if buf.is_empty() {
                    break;
                }
                read += buf.len() as u64;
                if read > meta.size {
                    return Ok(None);
                }
                number += 1;
                let n = number;
                let len = buf.len() as u64;
                crate::bwlimit::account(len, sys::stopping);
                inflight.push(async move {
                    let out = tree
                        .client()
                        .upload_part()
                        .bucket(tree.bucket())
                        .key(key)
                        .upload_id(id)
                        .part_number(n)
                        .body(ByteStream::from(buf))
                        .send()
                        .await
                        .map_err(|e| tree.err(e))?;
                    Ok::<_, io::Error>((
                        CompletedPart::builder()
                            .part_number(n)
                            .set_e_tag(out.e_tag().map(str::to_string))
                            .build(),
                        len,
                    ))
                });
            }
            match inflight.next().await {
                Some(Ok((part, len))) => {
                    sys::count_copied(len);
                    sent += len;
                    parts.push(part);
                }
                Some(Err(e)) => return Err((Side::Dest, e)),
                None => break,
            }
            if sys::stopping() {
                return Err((Side::Source, interrupted()));
            }
        }
        if read != meta.size || !src.unchanged().map_err(|e| (Side::Source, e))? {
            return Ok(None);
        }
        parts.sort_by_key(|p| p.part_number());
        Ok(Some((parts, sent)))
    }
}

/// Reads into `buf` until it holds `limit` bytes or the file ends.
fn read_up_to(src: &mut dyn Read, buf: &mut Vec<u8>, limit: usize) -> Result<(), (Side, io::Error)> {
    let start = buf.len();
    buf.resize(start + limit, 0);
    let mut n = 0;
    while n < limit {
        if sys::stopping() {
            return Err((Side::Source, interrupted()));
        }
        match src.read(&mut buf[start + n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted && !sys::stopping() => continue,
            Err(e) => return Err((Side::Source, e)),
        }
    }
    buf.truncate(start + n);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn copy_source_is_encoded() {
        assert_eq!(super::copy_source("b", "p/a b+c/é"), "b/p/a%20b%2Bc/%C3%A9");
    }
}
