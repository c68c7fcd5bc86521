//! The flow view's state: the calls received, which thread is shown, what is folded, the
//! slow-call threshold, the name filter being typed. No I/O: the loop feeds it lines and
//! names and carries out the effects it returns.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use crate::flow::{FlowLine, Kind};

/// Lines kept; older ones go first.
pub const KEEP: usize = 100_000;

/// Which filter field is being typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Class,
    Method,
}

#[derive(Debug)]
pub struct FlowView {
    pub pid: u32,
    /// `java (PID 1234, jvm)`
    pub title: String,
    lines: VecDeque<FlowLine>,
    /// Method names by hash.
    pub labels: HashMap<u64, String>,
    /// Threads seen, for cycling with `t`.
    pub threads: BTreeSet<u32>,
    /// Only this thread, when set.
    pub thread: Option<u32>,
    /// The process's live threads (id, name), while the thread picker is open.
    pub live_threads: Vec<(u32, String)>,
    /// The thread picker, open: the row selected (0 is "all threads", then
    /// `live_threads`).
    pub picking: Option<usize>,
    /// Entry lines (by seq) whose subtree is folded.
    pub folded: HashSet<u64>,
    /// Returns at least this slow are highlighted.
    pub slow_ns: u64,
    /// While paused (or scrolled back), new lines wait in `waiting`.
    pub paused: bool,
    waiting: Vec<FlowLine>,
    /// Follow the newest line; moving the cursor stops following.
    pub follow: bool,
    /// The selected line, as an index into `visible()` (worked out from `anchor` while
    /// scrolled back).
    pub cursor: usize,
    /// While scrolled back: the selected line and the top line shown, by seq, so neither
    /// moves as calls arrive or the oldest lines go.
    anchor: Option<u64>,
    top_seq: Option<u64>,
    pub class_prefix: String,
    pub method_prefix: String,
    /// The field being typed, and what has been typed.
    pub editing: Option<(Field, String)>,
    /// Lines received (entries and returns).
    pub received: u64,
    /// Calls received: entries.
    pub calls: u64,
    /// The kernel time of the first call received: line times count from it, so they stay
    /// put while old lines scroll out.
    pub origin_ns: Option<u64>,
    /// Events the kernel could not deliver, or that came too fast to keep.
    pub dropped: u64,
    /// A line for the user (the folded stacks' file).
    pub status: Option<String>,
    /// What the runtime calls the two filtered name slots (`class`/`method`,
    /// `file`/`function`).
    pub slots: [&'static str; 2],
    /// What the flow needs from the process, shown while no call has arrived.
    pub hint: &'static str,
}

impl FlowView {
    pub fn new(pid: u32, title: String) -> Self {
        Self {
            pid,
            title,
            lines: VecDeque::new(),
            labels: HashMap::new(),
            threads: BTreeSet::new(),
            thread: None,
            live_threads: Vec::new(),
            picking: None,
            folded: HashSet::new(),
            slow_ns: 1_000_000,
            paused: false,
            waiting: Vec::new(),
            follow: true,
            cursor: 0,
            anchor: None,
            top_seq: None,
            class_prefix: String::new(),
            method_prefix: String::new(),
            editing: None,
            received: 0,
            calls: 0,
            origin_ns: None,
            dropped: 0,
            status: None,
            slots: ["class", "method"],
            hint: "A JVM needs -XX:+ExtendedDTraceProbes; CPython 3.11 a profiler.",
        }
    }

    /// Names the filters and the hint as the process's runtime does.
    pub fn of_runtime(mut self, runtime: Option<&ustat_runtimes::Runtime>) -> Self {
        if let Some(flow) = runtime.and_then(|r| r.flow) {
            self.slots = flow.slots;
            self.hint = flow.hint;
        }
        self
    }

    /// Takes new lines (kept aside while paused).
    pub fn push(&mut self, lines: Vec<FlowLine>) {
        self.received += lines.len() as u64;
        self.calls += lines.iter().filter(|l| l.kind == Kind::Entry).count() as u64;
        if self.origin_ns.is_none() {
            self.origin_ns = lines.first().map(|l| l.ts_ns);
        }
        // Paused, or scrolled back: the lines on screen stay as they are (none added, none
        // pushed out) until the view follows the newest again.
        if self.paused || !self.follow {
            self.waiting.extend(lines);
            // Pausing must not grow memory without bound: the oldest waiting lines go.
            if self.waiting.len() > KEEP {
                let extra = self.waiting.len() - KEEP;
                self.waiting.drain(..extra);
            }
            return;
        }
        self.append(lines);
    }

    fn append(&mut self, lines: Vec<FlowLine>) {
        for line in lines {
            self.threads.insert(line.tid);
            self.lines.push_back(line);
        }
        while self.lines.len() > KEEP {
            if let Some(old) = self.lines.pop_front() {
                self.folded.remove(&old.seq);
            }
        }
    }

    pub fn toggle_pause(&mut self) {
        self.paused = !self.paused;
        self.take_waiting();
    }

    /// Shows the lines held back, once the view neither is paused nor scrolled back.
    fn take_waiting(&mut self) {
        if !self.paused && self.follow && !self.waiting.is_empty() {
            let waiting = std::mem::take(&mut self.waiting);
            self.append(waiting);
            self.cursor = self.visible().len().saturating_sub(1);
        }
    }

    /// Methods named in the lines that have no name yet.
    pub fn unnamed(&self) -> BTreeSet<u64> {
        self.lines
            .iter()
            .map(|l| l.method)
            .filter(|m| self.labels.get(m).is_none_or(|l| l == "?"))
            .collect()
    }

    pub fn label(&self, method: u64) -> &str {
        self.labels.get(&method).map_or("?", String::as_str)
    }

    /// The lines shown: of the chosen thread, without the insides of folded calls.
    pub fn visible(&self) -> Vec<&FlowLine> {
        let mut shown = Vec::new();
        // Per thread, the depth of the folded call being skipped.
        let mut skipping: HashMap<u32, u32> = HashMap::new();
        for line in &self.lines {
            if self.thread.is_some_and(|t| t != line.tid) {
                continue;
            }
            if let Some(&depth) = skipping.get(&line.tid) {
                if line.depth > depth {
                    continue;
                }
                // The folded call's own return (or a shallower line) ends the fold.
                skipping.remove(&line.tid);
                if line.depth == depth && line.kind != Kind::Entry {
                    shown.push(line);
                    continue;
                }
            }
            if line.kind == Kind::Entry && self.folded.contains(&line.seq) {
                skipping.insert(line.tid, line.depth);
            }
            shown.push(line);
        }
        shown
    }

    /// Keeps the cursor on a line: the newest while following, else the line it was on
    /// (or the next one kept, if that one went).
    pub fn clamp_cursor(&mut self, visible: usize) {
        if self.follow {
            self.cursor = visible.saturating_sub(1);
            return;
        }
        if let Some(anchor) = self.anchor {
            let shown = self.visible();
            self.cursor = shown.partition_point(|l| l.seq < anchor);
        }
        if self.cursor >= visible {
            self.cursor = visible.saturating_sub(1);
        }
    }

    /// The first of the `height` lines shown: the view moves only to keep the cursor in it,
    /// so while scrolled back it holds still as calls arrive.
    pub fn window_top(&mut self, height: usize) -> usize {
        let shown = self.visible();
        let mut top = match (self.follow, self.top_seq) {
            (false, Some(seq)) => shown.partition_point(|l| l.seq < seq),
            _ => (self.cursor + 1).saturating_sub(height),
        };
        if self.cursor < top {
            top = self.cursor;
        } else if self.cursor >= top + height {
            top = (self.cursor + 1).saturating_sub(height);
        }
        let seq = shown.get(top).map(|l| l.seq);
        self.top_seq = seq;
        top
    }

    pub fn move_cursor(&mut self, delta: isize) {
        let shown = self.visible();
        let visible = shown.len();
        if visible == 0 {
            return;
        }
        let target = (self.cursor as isize + delta).clamp(0, visible as isize - 1) as usize;
        let anchor = shown[target].seq;
        self.cursor = target;
        self.follow = target == visible - 1 && delta > 0;
        self.anchor = (!self.follow).then_some(anchor);
        self.take_waiting();
    }

    pub fn follow_newest(&mut self) {
        self.follow = true;
        self.anchor = None;
        self.top_seq = None;
        self.take_waiting();
        self.cursor = self.visible().len().saturating_sub(1);
    }

    /// Folds or unfolds the call whose entry is under the cursor.
    pub fn toggle_fold(&mut self) {
        let Some(line) = self.visible().get(self.cursor).map(|l| (l.seq, l.kind)) else {
            return;
        };
        if line.1 == Kind::Entry && !self.folded.remove(&line.0) {
            self.folded.insert(line.0);
        }
    }

    /// Opens the thread picker on the thread shown now.
    pub fn open_picker(&mut self, live: Vec<(u32, String)>) {
        self.live_threads = live;
        let row = self
            .thread
            .and_then(|t| self.live_threads.iter().position(|(tid, _)| *tid == t))
            .map_or(0, |i| i + 1);
        self.picking = Some(row);
    }

    /// Moves the picker's selection.
    pub fn move_pick(&mut self, delta: isize) {
        if let Some(row) = &mut self.picking {
            let last = self.live_threads.len() as isize;
            *row = (*row as isize + delta).clamp(0, last) as usize;
        }
    }

    /// Shows the thread picked (or all), and closes the picker.
    pub fn pick(&mut self) {
        if let Some(row) = self.picking.take() {
            self.thread = match row {
                0 => None,
                n => self.live_threads.get(n - 1).map(|(tid, _)| *tid),
            };
            self.follow_newest();
        }
    }

    /// A thread's name, where it is alive.
    pub fn thread_name(&self, tid: u32) -> Option<&str> {
        self.live_threads
            .iter()
            .find(|(t, _)| *t == tid)
            .map(|(_, name)| name.as_str())
    }

    pub fn slower(&mut self) {
        self.slow_ns = self.slow_ns.saturating_mul(2);
    }

    pub fn faster(&mut self) {
        self.slow_ns = (self.slow_ns / 2).max(1_000);
    }

    /// Ends typing a filter; returns whether the filter changed (the kernel must know).
    pub fn commit_edit(&mut self) -> bool {
        let Some((field, text)) = self.editing.take() else {
            return false;
        };
        let slot = match field {
            Field::Class => &mut self.class_prefix,
            Field::Method => &mut self.method_prefix,
        };
        let changed = *slot != text;
        *slot = text;
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64, tid: u32, kind: Kind, depth: u32, method: u64) -> FlowLine {
        FlowLine {
            seq,
            ts_ns: seq * 10,
            pid: 1,
            tid,
            kind,
            depth,
            method,
            duration_ns: 5,
        }
    }

    /// a(b, b) on thread 7, interleaved with x() on thread 8.
    fn view() -> FlowView {
        let mut view = FlowView::new(1, "java".into());
        view.push(vec![
            line(0, 7, Kind::Entry, 0, 1),
            line(1, 7, Kind::Entry, 1, 2),
            line(2, 8, Kind::Entry, 0, 9),
            line(3, 7, Kind::Return, 1, 2),
            line(4, 7, Kind::Entry, 1, 2),
            line(5, 8, Kind::Return, 0, 9),
            line(6, 7, Kind::Return, 1, 2),
            line(7, 7, Kind::Return, 0, 1),
        ]);
        view
    }

    fn seqs(view: &FlowView) -> Vec<u64> {
        view.visible().iter().map(|l| l.seq).collect()
    }

    #[test]
    fn one_thread_at_a_time() {
        let mut view = view();
        assert_eq!(seqs(&view).len(), 8);
        view.thread = Some(7);
        assert_eq!(seqs(&view), [0, 1, 3, 4, 6, 7]);
        view.thread = Some(8);
        assert_eq!(seqs(&view), [2, 5]);
    }

    #[test]
    fn folding_hides_a_calls_inside_but_not_other_threads() {
        let mut view = view();
        view.follow = false;
        view.cursor = 0;
        view.toggle_fold();
        assert_eq!(seqs(&view), [0, 2, 5, 7]);
        view.toggle_fold();
        assert_eq!(seqs(&view).len(), 8);
        // Only entries fold.
        view.cursor = 3;
        view.toggle_fold();
        assert!(view.folded.is_empty());
    }

    #[test]
    fn line_times_count_from_the_first_call_even_after_it_scrolls_out() {
        let mut view = view();
        let more = (8..8 + KEEP as u64).map(|seq| line(seq, 7, Kind::Entry, 0, 1));
        view.push(more.collect());
        assert_eq!(seqs(&view)[0], 8);
        assert_eq!(view.origin_ns, Some(0));
    }

    #[test]
    fn pause_holds_lines_back_until_resumed() {
        let mut view = view();
        view.toggle_pause();
        view.push(vec![line(8, 7, Kind::Entry, 0, 3)]);
        assert_eq!(seqs(&view).len(), 8);
        view.toggle_pause();
        assert_eq!(seqs(&view).len(), 9);
        assert_eq!(view.received, 9);
        // Four calls: a, b, x, b, and the one pushed while paused.
        assert_eq!(view.calls, 5);
    }

    #[test]
    fn the_cursor_follows_until_moved() {
        let mut view = view();
        view.clamp_cursor(8);
        assert_eq!(view.cursor, 7);
        view.move_cursor(-3);
        assert!(!view.follow);
        assert_eq!(view.cursor, 4);
        view.push(vec![line(8, 7, Kind::Entry, 0, 3)]);
        view.clamp_cursor(9);
        assert_eq!(view.cursor, 4, "scrolled back: stays");
        view.follow_newest();
        assert_eq!(view.cursor, 8);
    }

    #[test]
    fn scrolled_back_the_view_holds_still_as_calls_come_and_old_ones_go() {
        let mut view = FlowView::new(1, String::new());
        view.push(
            (0..KEEP as u64)
                .map(|i| line(i, 1, Kind::Entry, 0, 1))
                .collect(),
        );
        view.clamp_cursor(KEEP);
        view.window_top(10);
        view.move_cursor(-20);
        let on = view.visible()[view.cursor].seq;
        let top = view.window_top(10);
        let top_seq = view.visible()[top].seq;
        // A thousand more calls: as many old ones go, and the indices shift.
        view.push(
            (KEEP as u64..KEEP as u64 + 1000)
                .map(|i| line(i, 1, Kind::Entry, 0, 1))
                .collect(),
        );
        view.clamp_cursor(KEEP);
        assert_eq!(
            view.visible()[view.cursor].seq,
            on,
            "the cursor stays on its line"
        );
        let top = view.window_top(10);
        assert_eq!(view.visible()[top].seq, top_seq, "the window holds still");
        // Moving within the window (the cursor is at its top) does not scroll it.
        view.move_cursor(3);
        let top = view.window_top(10);
        assert_eq!(view.visible()[top].seq, top_seq);
        view.follow_newest();
        assert_eq!(view.cursor, KEEP - 1);
    }

    #[test]
    fn the_thread_picker_lists_live_threads_and_shows_the_one_picked() {
        let mut view = view();
        view.open_picker(vec![(7, "main".into()), (8, "worker-1".into())]);
        assert_eq!(view.picking, Some(0), "all threads first");
        view.move_pick(2);
        view.pick();
        assert_eq!(view.thread, Some(8));
        assert_eq!(view.thread_name(8), Some("worker-1"));
        assert_eq!(seqs(&view), [2, 5]);
        view.open_picker(vec![(7, "main".into()), (8, "worker-1".into())]);
        assert_eq!(view.picking, Some(2), "opens on the thread shown");
        view.move_pick(-5);
        view.pick();
        assert_eq!(view.thread, None);
    }

    #[test]
    fn editing_a_filter() {
        let mut view = view();
        view.editing = Some((Field::Class, "java.util".into()));
        assert!(view.commit_edit());
        assert_eq!(view.class_prefix, "java.util");
        view.editing = Some((Field::Class, "java.util".into()));
        assert!(!view.commit_edit());
        view.slower();
        assert_eq!(view.slow_ns, 2_000_000);
        view.faster();
        view.faster();
        assert_eq!(view.slow_ns, 500_000);
    }

    #[test]
    fn only_so_many_lines_are_kept() {
        let mut view = FlowView::new(1, String::new());
        view.push(
            (0..KEEP as u64 + 10)
                .map(|i| line(i, 1, Kind::Entry, 0, 1))
                .collect(),
        );
        assert_eq!(view.visible().len(), KEEP);
        assert_eq!(view.visible()[0].seq, 10);
    }
}
