//! Deletions held back by `--max-delete` in watch mode.
//!
//! A one-shot run refuses a plan that deletes too much (exit 4). A watcher cannot stop
//! over it (a service would crash-loop and mirror nothing any more), so it applies
//! everything else, and holds back the deletions of entries SOURCE no longer has: DEST
//! keeps them until a later look finds them within the limit (some came back in
//! SOURCE, say). Replacing an entry by one of another kind is not held back: it is an
//! update, not a loss.

use crate::plan::{DeleteReason, DirPlan, Op};
use crate::relpath::join;

/// Entries one deletion removes (the entry itself unless kept, and what it holds).
fn removed_by(op: &Op) -> u64 {
    match op {
        Op::Delete { sub, keep, .. } => u64::from(!keep) + sub.ops.iter().map(removed_by).sum::<u64>(),
        _ => 0,
    }
}

/// Entries the deletions in `dp` remove that SOURCE no longer has (reason `Gone`),
/// anywhere below.
pub fn gone_count(dp: &DirPlan) -> u64 {
    dp.ops
        .iter()
        .map(|op| match op {
            Op::Delete { reason: DeleteReason::Gone, .. } => removed_by(op),
            Op::Enter { sub, .. } | Op::Mkdir { sub, .. } => gone_count(sub),
            _ => 0,
        })
        .sum()
}

/// Takes every deletion of an entry SOURCE no longer has out of `dp` (at `base`);
/// the paths it held back are added to `held`.
pub fn strip_gone(dp: &mut DirPlan, base: &[u8], held: &mut Vec<Vec<u8>>) {
    dp.ops.retain_mut(|op| match op {
        Op::Delete { reason: DeleteReason::Gone, name, .. } => {
            held.push(join(base, name));
            false
        }
        Op::Enter { name, sub } => {
            let path = join(base, name);
            strip_gone(sub, &path, held);
            true
        }
        _ => true,
    });
    // A directory entered only for deletions now has nothing to do but its attributes.
    dp.ops.retain(|op| !matches!(op, Op::Enter { sub, .. } if sub.is_empty()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::DirPlan;

    fn del(name: &str, reason: DeleteReason, sub: Vec<Op>) -> Op {
        Op::Delete {
            name: name.as_bytes().into(),
            dir: !sub.is_empty(),
            reason,
            sub: DirPlan { ops: sub, ..DirPlan::default() },
            keep: false,
        }
    }

    #[test]
    fn gone_deletions_are_counted_and_held_back_type_changes_are_not() {
        let inner = vec![del("f", DeleteReason::Gone, vec![]), del("g", DeleteReason::Gone, vec![])];
        let mut dp = DirPlan {
            ops: vec![
                del("x", DeleteReason::Gone, inner),
                del("t", DeleteReason::TypeChange, vec![]),
                Op::Enter {
                    name: b"d".to_vec().into(),
                    sub: DirPlan { ops: vec![del("y", DeleteReason::Gone, vec![])], ..DirPlan::default() },
                },
            ],
            ..DirPlan::default()
        };
        assert_eq!(gone_count(&dp), 4);
        let mut held = Vec::new();
        strip_gone(&mut dp, b"", &mut held);
        assert_eq!(held, vec![b"x".to_vec(), b"d/y".to_vec()]);
        assert_eq!(dp.ops.len(), 1, "{:?}", dp.ops);
        assert!(matches!(&dp.ops[0], Op::Delete { reason: DeleteReason::TypeChange, .. }));
    }
}
