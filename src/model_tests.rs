//! Model-based tests of the planner: for random pairs of trees and every option
//! combination, applying the plan to an in-memory model of DEST must give what an
//! independent statement of the rules expects (SOURCE exactly, with `--delete` and
//! no excludes).
//!
//! The model applier executes each `Op` on a tree of `Entry` values the way `apply`
//! does on disk (deletions first, a directory's attributes after its contents); the
//! expectation is computed entry by entry from the option semantics in README.md,
//! without the planner's code.

use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;

use crate::ignore::{RuleFile, Rules};
use crate::plan::{plan, DirPlan, Op, PlanOptions};
use crate::relpath::join;
use crate::snapshot::{Entry, Kind, Snapshot};
use crate::sys::Meta;

const NAMES: &[&str] = &["a", "b", "c.x", ".h", "keep.x"];

fn meta_strategy() -> impl Strategy<Value = Meta> {
    (0u64..3, 0i64..3, 0u32..2, prop::sample::select(vec![0o644u32, 0o755, 0o600]), 0u32..2).prop_map(
        |(size, sec, nsec, mode, uid)| Meta {
            size,
            mtime_sec: 1_000 + sec,
            mtime_nsec: nsec,
            mode,
            uid,
            gid: uid,
            ino: 0,
            blocks: 0,
        },
    )
}

fn leaf() -> impl Strategy<Value = (Meta, Kind)> {
    prop_oneof![
        (meta_strategy(), 0u8..3).prop_map(|(m, c)| (m, Kind::File(Some(Box::new([c; 32]))))),
        (meta_strategy(), prop::sample::select(vec!["t1", "t2", "../x"]))
            .prop_map(|(m, t)| (Meta { mode: 0o777, ..m }, Kind::Symlink(t.as_bytes().into()))),
    ]
}

fn tree(depth: u32) -> BoxedStrategy<Vec<Entry>> {
    let entry = if depth == 0 {
        leaf().boxed()
    } else {
        prop_oneof![
            3 => leaf(),
            2 => (meta_strategy(), tree(depth - 1)).prop_map(|(m, c)| (Meta { size: 0, ..m }, Kind::Dir(c))),
        ]
        .boxed()
    };
    prop::collection::vec((prop::sample::select(NAMES.to_vec()), entry), 0..4)
        .prop_map(|v| {
            let mut out: Vec<Entry> = v
                .into_iter()
                .map(|(n, (meta, kind))| Entry { name: n.as_bytes().into(), meta, kind })
                .collect();
            out.sort_by(|a, b| a.name.cmp(&b.name));
            out.dedup_by(|a, b| a.name == b.name);
            out
        })
        .boxed()
}

fn snapshot(entries: Vec<Entry>, root: Meta) -> Snapshot {
    Snapshot { root, entries, ..Snapshot::default() }
}

/// Executes a directory plan on the model, reading SOURCE's entries for copies.
fn apply_model(dp: &DirPlan, src: &[Entry], dst_meta: &mut Meta, dst: &mut Vec<Entry>) {
    let find = |v: &[Entry], n: &[u8]| v.iter().position(|e| *e.name == *n);
    for op in dp.ops.iter().filter(|o| o.is_delete()) {
        let Op::Delete { name, sub, keep, .. } = op else { continue };
        let Some(i) = find(dst, name) else { continue };
        if let Kind::Dir(children) = &mut dst[i].kind {
            let mut m = Meta::default();
            apply_model(sub, &[], &mut m, children);
        }
        if !keep {
            dst.remove(i);
        }
    }
    for op in dp.ops.iter().filter(|o| !o.is_delete()) {
        let s = find(src, op.name()).map(|i| &src[i]);
        match op {
            Op::Delete { .. } => {}
            Op::Mkdir { name, sub } => {
                assert!(find(dst, name).is_none(), "mkdir over an existing entry");
                let s = s.expect("mkdir of something SOURCE has");
                let mut e = Entry {
                    name: name.clone(),
                    meta: Meta { mode: 0o700, ..s.meta },
                    kind: Kind::Dir(vec![]),
                };
                if let Kind::Dir(children) = &mut e.kind {
                    apply_model(sub, s.children(), &mut e.meta, children);
                }
                dst.push(e);
            }
            Op::Enter { name, sub } => {
                let i = find(dst, name).expect("enter an existing dir");
                let s = s.expect("enter a dir SOURCE has");
                let e = &mut dst[i];
                let Kind::Dir(children) = &mut e.kind else { panic!("enter a non-directory") };
                apply_model(sub, s.children(), &mut e.meta, children);
            }
            Op::Copy { name, .. } | Op::Symlink { name, .. } => {
                let s = s.expect("copy of something SOURCE has").clone();
                match find(dst, name) {
                    Some(i) => {
                        assert!(!dst[i].is_dir(), "rename over a directory");
                        dst[i] = s;
                    }
                    None => dst.push(s),
                }
            }
            Op::Meta { name, meta, .. } => {
                let i = find(dst, name).expect("meta of an existing entry");
                let e = &mut dst[i];
                e.meta.mode = meta.mode;
                e.meta.mtime_sec = meta.mtime_sec;
                e.meta.mtime_nsec = meta.mtime_nsec;
                e.meta.uid = meta.uid;
                e.meta.gid = meta.gid;
            }
        }
    }
    dst.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(m) = dp.set_meta {
        dst_meta.mode = m.mode;
        dst_meta.mtime_sec = m.mtime_sec;
        dst_meta.mtime_nsec = m.mtime_nsec;
        dst_meta.uid = m.uid;
        dst_meta.gid = m.gid;
    }
}

/// The options under test, and the rules they imply.
#[derive(Clone, Debug)]
struct Case {
    delete: bool,
    checksum: bool,
    window: u64,
    owner: bool,
    exclude: bool,
    delete_excluded: bool,
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec![0u64, 1_500_000_000]),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(delete, checksum, window, owner, exclude, delete_excluded)| Case {
            delete: delete || delete_excluded,
            checksum,
            window,
            owner,
            exclude,
            delete_excluded: delete_excluded && exclude,
        })
}

fn rules(case: &Case) -> Option<Arc<Rules>> {
    if !case.exclude {
        return None;
    }
    let f = RuleFile::from_patterns("--exclude", &["*.x".into(), "!keep.x".into(), "b/".into()])
        .expect("patterns");
    Some(Arc::new(Rules { cli: vec![Arc::new(f)], delete_excluded: case.delete_excluded, keep: None }))
}

fn excluded(r: &Option<Arc<Rules>>, path: &[u8], is_dir: bool) -> bool {
    r.as_ref().is_some_and(|r| r.excluded(&[], crate::relpath::rel_path(path), is_dir))
}

/// SOURCE as the scanner would see it: excluded entries left out.
fn scan_view(entries: &[Entry], rel: &[u8], r: &Option<Arc<Rules>>) -> Vec<Entry> {
    entries
        .iter()
        .filter(|e| !excluded(r, &join(rel, &e.name), e.is_dir()))
        .map(|e| {
            let mut e = e.clone();
            if let Kind::Dir(c) = &e.kind {
                e.kind = Kind::Dir(scan_view(c, &join(rel, &e.name), r));
            }
            e
        })
        .collect()
}

/// SOURCE's `a` and DEST's `b` count as the same mtime (README: within
/// `--modify-window`; DEST here has nanosecond timestamps).
fn mtime_close(a: &Meta, b: &Meta, window: u64) -> bool {
    (a.mtime_ns() - b.mtime_ns()).unsigned_abs() <= window as u128
}

/// What DEST must hold afterwards, from the rules as documented.
fn expected(src: &[Entry], dst: &[Entry], rel: &[u8], case: &Case, r: &Option<Arc<Rules>>) -> Vec<Entry> {
    let mut out = Vec::new();
    for s in src {
        let path = join(rel, &s.name);
        let d = dst.iter().find(|d| d.name == s.name);
        let e = match (&s.kind, d.map(|d| &d.kind)) {
            (Kind::File(sd), Some(Kind::File(dd))) => {
                let d = d.expect("paired");
                let same_content =
                    if case.checksum { sd == dd } else { mtime_close(&s.meta, &d.meta, case.window) };
                if s.meta.size == d.meta.size && same_content {
                    // Not copied: content stays; an attribute fix (any attribute
                    // differing beyond the window) gives all of SOURCE's attributes.
                    let mut e = d.clone();
                    if s.meta.mode != d.meta.mode
                        || owner_differs(s, d, case)
                        || !mtime_close(&s.meta, &d.meta, case.window)
                    {
                        take_attrs(&mut e.meta, &s.meta, case);
                    }
                    e
                } else {
                    s.clone()
                }
            }
            (Kind::Symlink(st), Some(Kind::Symlink(dt))) if st == dt => {
                let d = d.expect("paired");
                let mut e = d.clone();
                if owner_differs(s, d, case) || !mtime_close(&s.meta, &d.meta, case.window) {
                    take_attrs(&mut e.meta, &s.meta, case);
                }
                e
            }
            // A DEST directory in the way that holds excluded entries stays, with
            // only those (reported as a conflict), and SOURCE's entry is not created.
            (_, Some(Kind::Dir(_)))
                if !s.is_dir() && type_change_keep(d.expect("paired"), &path, case, r).is_some() =>
            {
                type_change_keep(d.expect("paired"), &path, case, r).expect("checked")
            }
            (Kind::Dir(sc), Some(Kind::Dir(dc))) => {
                let d = d.expect("paired");
                let mut e = d.clone();
                e.kind = Kind::Dir(expected(sc, dc, &path, case, r));
                dir_meta(&mut e.meta, &s.meta, &d.meta, case, e.kind != d.kind);
                e
            }
            (Kind::Dir(sc), _) => {
                let mut e = s.clone();
                e.kind = Kind::Dir(expected(sc, &[], &path, case, r));
                e
            }
            _ => s.clone(),
        };
        out.push(e);
    }
    // DEST-only entries.
    for d in dst.iter().filter(|d| !src.iter().any(|s| s.name == d.name)) {
        let path = join(rel, &d.name);
        if let Some(kept) = keep_dest_only(d, &path, case, r) {
            out.push(kept);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn owner_differs(s: &Entry, d: &Entry, case: &Case) -> bool {
    case.owner && (s.meta.uid != d.meta.uid || s.meta.gid != d.meta.gid)
}

fn take_attrs(out: &mut Meta, s: &Meta, case: &Case) {
    out.mode = s.mode;
    out.mtime_sec = s.mtime_sec;
    out.mtime_nsec = s.mtime_nsec;
    if case.owner {
        out.uid = s.uid;
        out.gid = s.gid;
    }
}

/// What a type change leaves of DEST directory `d`: its excluded entries (and the
/// directories holding them), unless excluded entries may be deleted.
fn type_change_keep(d: &Entry, path: &[u8], case: &Case, r: &Option<Arc<Rules>>) -> Option<Entry> {
    if !case.exclude || case.delete_excluded {
        return None;
    }
    let Kind::Dir(children) = &d.kind else { return None };
    let kept: Vec<Entry> = children
        .iter()
        .filter_map(|c| {
            let cpath = join(path, &c.name);
            if excluded(r, &cpath, c.is_dir()) {
                Some(c.clone())
            } else {
                type_change_keep(c, &cpath, case, r)
            }
        })
        .collect();
    (!kept.is_empty()).then(|| Entry { kind: Kind::Dir(kept), ..d.clone() })
}

fn dir_meta(out: &mut Meta, s: &Meta, d: &Meta, case: &Case, contents_changed: bool) {
    let own = s.mode != d.mode
        || !mtime_close(s, d, case.window)
        || (case.owner && (s.uid != d.uid || s.gid != d.gid));
    if own || contents_changed {
        out.mode = s.mode;
        out.mtime_sec = s.mtime_sec;
        out.mtime_nsec = s.mtime_nsec;
        out.uid = s.uid;
        out.gid = s.gid;
    }
}

/// A DEST entry SOURCE lacks: kept whole without --delete, kept when excluded (unless
/// --delete-excluded), otherwise removed — except the excluded entries inside it.
fn keep_dest_only(d: &Entry, path: &[u8], case: &Case, r: &Option<Arc<Rules>>) -> Option<Entry> {
    if !case.delete {
        return Some(d.clone());
    }
    if excluded(r, path, d.is_dir()) && !case.delete_excluded {
        return Some(d.clone());
    }
    match &d.kind {
        Kind::Dir(children) => {
            let kept: Vec<Entry> =
                children.iter().filter_map(|c| keep_dest_only(c, &join(path, &c.name), case, r)).collect();
            if kept.is_empty() {
                None
            } else {
                let mut e = d.clone();
                e.kind = Kind::Dir(kept);
                Some(e)
            }
        }
        _ => None,
    }
}

/// One entry as compared: path, size, mtime, mode, (uid, gid), kind.
type Row = (Vec<u8>, u64, i128, u32, (u32, u32), String);

/// Entries as compared: attributes that matter, recursively.
fn normalize(v: &[Entry], owner: bool) -> Vec<Row> {
    let mut out = Vec::new();
    fn walk(v: &[Entry], rel: &[u8], owner: bool, out: &mut Vec<Row>) {
        for e in v {
            let path = join(rel, &e.name);
            let kind = match &e.kind {
                Kind::File(d) => format!("file {:?}", d.as_ref().map(|d| d[0])),
                Kind::Dir(_) => "dir".into(),
                Kind::Symlink(t) => format!("link {}", String::from_utf8_lossy(t)),
                Kind::Special(s) => s.to_string(),
                Kind::Unreadable => "unreadable".into(),
                Kind::Unknown => "unknown".into(),
            };
            let ids = if owner { (e.meta.uid, e.meta.gid) } else { (0, 0) };
            let size = if matches!(e.kind, Kind::File(_)) { e.meta.size } else { 0 };
            out.push((path.clone(), size, e.meta.mtime_ns(), e.meta.mode, ids, kind));
            walk(e.children(), &path, owner, out);
        }
    }
    walk(v, b"", owner, &mut out);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn applying_the_plan_gives_what_the_options_promise(
        src in tree(3),
        dst in tree(3),
        src_root in meta_strategy(),
        dst_root in meta_strategy(),
        case in case_strategy(),
    ) {
        let r = rules(&case);
        let src_view = scan_view(&src, b"", &r);
        let opts = PlanOptions {
            delete: case.delete,
            checksum: case.checksum,
            modify_window_ns: case.window,
            owner: case.owner,
            rules: r.clone(),
            explain: false,
            dest_grain_ns: None,
            no_link_attrs: false,
            attrs: None,
            followers: None,
        };
        let s = snapshot(src_view.clone(), src_root);
        let d = snapshot(dst.clone(), dst_root);
        let p = plan(&s, Some(&d), &opts);

        let mut got_meta = dst_root;
        let mut got = dst.clone();
        apply_model(&p.root, &src_view, &mut got_meta, &mut got);

        let want = expected(&src_view, &dst, b"", &case, &r);
        prop_assert_eq!(normalize(&got, case.owner), normalize(&want, case.owner), "case {:?}", case);
        if case.delete && !case.exclude && case.checksum && case.window == 0 {
            // Contents compared, deletions on, nothing excluded: DEST equals SOURCE
            // exactly. (Without --checksum, files of equal size and mtime are taken as
            // equal, which the generated trees can contradict.)
            prop_assert_eq!(normalize(&got, case.owner), normalize(&src_view, case.owner));
        }
        // Planning again from the result is a no-op (idempotence).
        let again = plan(&s, Some(&snapshot(got.clone(), got_meta)), &opts);
        prop_assert!(again.root.ops.is_empty(), "second plan not empty: {:?}", again.changes());
    }
}

#[test]
fn model_rules_compile() {
    let r = rules(&Case {
        delete: true,
        checksum: false,
        window: 0,
        owner: false,
        exclude: true,
        delete_excluded: false,
    });
    assert!(excluded(&r, b"c.x", false));
    assert!(!excluded(&r, b"keep.x", false));
    assert!(excluded(&r, b"b", true));
    assert!(!excluded(&r, b"b", false));
    let _ = Path::new("");
}
