//! Itemized changes in path order while a plan is applied in parallel.
//!
//! Every operation of a plan owns a range of *slots*, numbered in the order a dry run
//! lists the plan (`DirPlan::changes`): a directory's deletions, then its other entries
//! by name, a created directory's line before its contents, a directory's `meta` or
//! `delete` line after them. A change is counted at once (summary, progress) but
//! printed only when every earlier slot is finished; until then it waits here. What
//! waits is bounded by [`MAX_WAITING`]: past that, the waiting lines are printed as they
//! are (still in order among themselves), so a slow entry early in the tree cannot make
//! memory grow with the tree.

use std::collections::BTreeMap;
use std::sync::Mutex;

use rustc_hash::FxHashMap;

use crate::plan::{ChangeKind, DirPlan, Op};
use crate::report::Reporter;

/// The most changes held back for order; then they are printed out of order.
pub const MAX_WAITING: usize = 10_000;

/// The slot ranges of a plan's operations: how many slots each directory plan spans.
pub struct Slots {
    /// `DirPlan` (by address) → the slots of its operations.
    sizes: FxHashMap<usize, u64>,
}

impl Slots {
    pub fn of(dp: &DirPlan) -> Slots {
        let mut sizes = FxHashMap::default();
        size_into(dp, &mut sizes);
        Slots { sizes }
    }

    /// Slots of `dp`'s operations (its own `meta` line not included).
    pub fn size(&self, dp: &DirPlan) -> u64 {
        self.sizes.get(&(dp as *const DirPlan as usize)).copied().unwrap_or(0)
    }

    /// `dp`'s operations, each with its first slot, the first starting at `first`.
    pub fn numbered<'d>(&self, dp: &'d DirPlan, first: u64) -> Vec<(u64, &'d Op)> {
        let mut at = first;
        dp.ops
            .iter()
            .map(|op| {
                let s = at;
                at += self.of_op(op);
                (s, op)
            })
            .collect()
    }

    /// Slots of one operation: one for an entry; for a directory an opening slot, its
    /// contents, and a closing slot.
    pub fn of_op(&self, op: &Op) -> u64 {
        match op {
            Op::Mkdir { sub, .. } | Op::Enter { sub, .. } | Op::Delete { dir: true, sub, .. } => {
                2 + self.size(sub)
            }
            _ => 1,
        }
    }
}

fn size_into(dp: &DirPlan, sizes: &mut FxHashMap<usize, u64>) -> u64 {
    let mut n = 0u64;
    for op in &dp.ops {
        n += match op {
            Op::Mkdir { sub, .. } | Op::Enter { sub, .. } | Op::Delete { dir: true, sub, .. } => {
                2 + size_into(sub, sizes)
            }
            _ => 1,
        };
    }
    sizes.insert(dp as *const DirPlan as usize, n);
    n
}

/// Prints changes in slot order (see the module's documentation).
pub struct Ordered<'a> {
    rep: &'a Reporter,
    /// Nothing is printed by the reporter: no need to hold anything back.
    direct: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Every slot before this one is finished.
    next: u64,
    /// Finished ranges not yet reached: start → end (exclusive).
    finished: BTreeMap<u64, u64>,
    /// Changes of later slots, waiting for their turn.
    waiting: BTreeMap<u64, Vec<(Vec<u8>, ChangeKind)>>,
    held: usize,
}

impl<'a> Ordered<'a> {
    pub fn new(rep: &'a Reporter) -> Ordered<'a> {
        Ordered { rep, direct: !rep.prints_changes(), state: Mutex::new(State::default()) }
    }

    /// A change done by the operation at `slot`.
    pub fn change(&self, slot: u64, path: &[u8], kind: &ChangeKind) {
        self.rep.count_change(path, kind);
        if self.direct {
            return;
        }
        let mut st = crate::lock::lock(&self.state);
        // Printed while the lock is held, so that lines keep their order.
        for (p, k) in st.change(slot, (path.to_vec(), kind.clone())) {
            self.rep.print_change(&p, &k);
        }
    }

    /// The whole plan `dp` at `base` was applied (the appliers' last step): its own
    /// `meta` line comes last, when its attributes were set (and no stop was asked
    /// for), and nothing waits any more.
    pub fn plan_done(&self, slots: &Slots, dp: &DirPlan, base: &[u8], attrs_set: bool) {
        let last = slots.size(dp);
        if attrs_set && dp.meta_changed && !crate::sys::stopping() {
            self.change(last, if base.is_empty() { b"." } else { base }, &ChangeKind::Meta);
        }
        self.finish(0, last + 1);
    }

    /// Slots `start..end` are finished (nothing more will be reported at them).
    pub fn finish(&self, start: u64, end: u64) {
        if self.direct || end <= start {
            return;
        }
        let mut st = crate::lock::lock(&self.state);
        for (p, k) in st.finish(start, end) {
            self.rep.print_change(&p, &k);
        }
    }
}

type Line = (Vec<u8>, ChangeKind);

impl State {
    /// A change at `slot`: what may be printed now, in order.
    fn change(&mut self, slot: u64, line: Line) -> Vec<Line> {
        if slot <= self.next {
            return vec![line];
        }
        self.waiting.entry(slot).or_default().push(line);
        self.held += 1;
        if self.held <= MAX_WAITING {
            return Vec::new();
        }
        // Bounded memory before order: what waits goes out, in order among itself.
        self.held = 0;
        std::mem::take(&mut self.waiting).into_values().flatten().collect()
    }

    /// Slots `start..end` are finished: what may be printed now, in order.
    fn finish(&mut self, start: u64, end: u64) -> Vec<Line> {
        let e = self.finished.entry(start).or_insert(end);
        *e = (*e).max(end);
        while let Some((&s, &e)) = self.finished.first_key_value() {
            if s > self.next {
                break;
            }
            self.finished.pop_first();
            self.next = self.next.max(e);
        }
        let mut out = Vec::new();
        while let Some(entry) = self.waiting.first_entry() {
            if *entry.key() > self.next {
                break;
            }
            let lines = entry.remove();
            self.held -= lines.len();
            out.extend(lines);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::Meta;

    fn copy(name: &str) -> Op {
        Op::Copy { name: name.as_bytes().into(), meta: Meta::default(), new: true }
    }

    #[test]
    fn slots_cover_every_operation_and_directory_ends() {
        let sub = DirPlan { ops: vec![copy("x"), copy("y")], ..DirPlan::default() };
        let dp = DirPlan {
            ops: vec![copy("a"), Op::Mkdir { name: b"d".as_slice().into(), sub }, copy("z")],
            ..DirPlan::default()
        };
        let slots = Slots::of(&dp);
        assert_eq!(slots.size(&dp), 1 + (2 + 2) + 1);
        assert_eq!(slots.of_op(&dp.ops[1]), 4);
        assert_eq!(slots.of_op(&dp.ops[0]), 1);
    }

    fn names(lines: Vec<Line>) -> Vec<String> {
        lines.into_iter().map(|(p, _)| String::from_utf8_lossy(&p).into_owned()).collect()
    }

    fn line(name: &str) -> Line {
        (name.as_bytes().to_vec(), ChangeKind::Mkdir)
    }

    #[test]
    fn lines_wait_for_every_earlier_slot() {
        let mut st = State::default();
        assert_eq!(names(st.change(0, line("a"))), ["a"]);
        assert!(st.change(2, line("c")).is_empty());
        assert!(st.change(5, line("f")).is_empty());
        // Slot 2 is at the front once 0 and 1 are done; 5 waits for 3 and 4.
        assert!(st.finish(3, 5).is_empty());
        assert_eq!(names(st.finish(0, 2)), ["c"]);
        assert_eq!(names(st.change(2, line("c2"))), ["c2"]);
        assert_eq!(names(st.finish(1, 3)), ["f"]);
        assert_eq!(st.held, 0);
        assert!(st.waiting.is_empty());
    }

    #[test]
    fn waiting_is_bounded() {
        let mut st = State::default();
        let mut printed = 0;
        for slot in 1..=(MAX_WAITING as u64 + 1) {
            printed += st.change(slot, line("x")).len();
        }
        assert_eq!(printed, MAX_WAITING + 1, "all printed once the bound is passed");
        assert_eq!(st.held, 0);
        assert!(st.waiting.is_empty());
    }
}
