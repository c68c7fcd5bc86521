//! The dashboard's state. `App` never does I/O: `apply` takes a snapshot, `update` takes an
//! action and returns what the loop must do (quit, export).

use std::{
    collections::{BTreeMap, VecDeque},
    time::Duration,
};

use super::{
    flow::{Field, FlowView},
    keys::Mode,
    sampled::{SampledSince, cpu_percent},
};
use crate::{
    category::{CHARTED, Category},
    samples::{FoldedStacks, process_label},
    snapshot::{ProcessSnapshot, Snapshot},
};

/// Columns of the process table, in display order. A rate column is its category's
/// (`Category::table_column`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Pid,
    Command,
    Runtime,
    /// The share of a CPU the process used, from its samples (`sampled::cpu_percent`).
    CpuPercent,
    PauseP99,
    /// Events of a category per second.
    Rate(Category),
}

impl Column {
    pub const ALL: [Self; 10] = [
        Self::Pid,
        Self::Command,
        Self::Runtime,
        Self::CpuPercent,
        Self::Rate(Category::Gc),
        Self::PauseP99,
        Self::Rate(Category::ClassLoaded),
        Self::Rate(Category::ThreadStarted),
        Self::Rate(Category::ObjectAlloc),
        Self::Rate(Category::MethodCall),
    ];

    pub fn title(self) -> &'static str {
        match self {
            Self::Pid => "PID",
            Self::Command => "COMMAND",
            Self::Runtime => "RUNTIME",
            Self::CpuPercent => "CPU%",
            Self::PauseP99 => "PAUSE p99",
            Self::Rate(category) => category.table_column().map_or("?", |(title, _)| title),
        }
    }

    /// Its width in the table: its title's, and its widest value's (the command takes what
    /// is left, at least this).
    pub fn width(self) -> u16 {
        match self {
            // PIDs go up to 4194304.
            Self::Pid => 7,
            Self::Command => 10,
            Self::Runtime => 7,
            // `CPU%` and its sort arrow; values up to `9999`.
            Self::CpuPercent => 5,
            // `12.3ms`, `999µs`, with room for the title.
            Self::PauseP99 => 9,
            // Rates are `12.3`, `999`, `1.2k`, `12k`, `3.4M`: the title is wider.
            Self::Rate(category) => category
                .table_column()
                .map_or(7, |(title, _)| title.chars().count() as u16),
        }
    }

    /// Which columns go first when the terminal is too narrow for all: the lowest number
    /// goes first. PID and COMMAND always stay. A new column takes its place here.
    pub fn priority(self) -> u8 {
        match self {
            Self::Pid | Self::Command => u8::MAX,
            Self::Rate(Category::Gc) => 90,
            Self::PauseP99 => 80,
            Self::Rate(Category::MethodCall) => 70,
            Self::Rate(Category::ObjectAlloc) => 60,
            Self::Runtime => 50,
            Self::Rate(Category::ThreadStarted) => 40,
            Self::Rate(Category::ClassLoaded) => 30,
            Self::Rate(_) => 20,
            // Sampled, where the rest are exact: the first to go.
            Self::CpuPercent => 10,
        }
    }

    fn next(self) -> Self {
        let i = Self::ALL.iter().position(|c| *c == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }

    /// The value sorted on: numbers for numeric columns.
    fn key(self, p: &ProcessSnapshot, interval: Duration) -> f64 {
        match self {
            Self::Pid | Self::Command | Self::Runtime => 0.0,
            // Processes not sampled sort below those sampled idle.
            Self::CpuPercent => p
                .sampled
                .as_ref()
                .and_then(|s| cpu_percent(s, interval))
                .unwrap_or(-1.0),
            Self::PauseP99 => p.pause.map_or(0.0, |s| s.p99_ns as f64),
            Self::Rate(category) => category.count(&p.interval).unwrap_or(0) as f64,
        }
    }

    fn compare(
        self,
        a: &ProcessSnapshot,
        b: &ProcessSnapshot,
        interval: Duration,
    ) -> std::cmp::Ordering {
        match self {
            Self::Pid => a.pid.cmp(&b.pid),
            Self::Command => a.command.cmp(&b.command),
            Self::Runtime => a.runtime.cmp(b.runtime),
            Self::CpuPercent | Self::PauseP99 | Self::Rate(_) => {
                self.key(a, interval).total_cmp(&self.key(b, interval))
            }
        }
    }
}

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Up,
    Down,
    PageUp,
    PageDown,
    First,
    Last,
    OpenDetail,
    Back,
    NextSort,
    ReverseSort,
    NextRuntime,
    Export,
    TogglePause,
    ToggleHelp,
    /// Follow the selected process's method calls.
    OpenFlow,
    /// Attach the selected process's on-demand features (calls, imports).
    TraceOnDemand,
    /// In the flow view: fold the call under the cursor.
    Fold,
    NextThread,
    EditClass,
    EditMethod,
    Slower,
    Faster,
    /// Folded stacks: the flow's call tree in the flow view, the sampled stacks elsewhere.
    ExportFolded,
    /// Typing a filter.
    Type(char),
    Erase,
    /// Clear what was typed (Ctrl-U).
    Clear,
    Commit,
    None,
}

/// What the event loop must do after an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    None,
    Quit,
    /// Write the current snapshot to a CSV file and report its path with `exported`.
    Export,
    /// Start following this process's calls (then `flow_opened`).
    OpenFlow(u32),
    /// Stop following.
    CloseFlow,
    /// Tell the kernel the flow filter changed.
    FilterFlow {
        class: String,
        method: String,
    },
    /// Write this process's call tree as folded stacks (then `flow_status`).
    ExportFolded(u32),
    /// Write these folded lines, the sampled stacks of process `pid`, to a new file (then
    /// `sampled_written`).
    ExportSampled {
        pid: u32,
        lines: Vec<String>,
    },
    /// Attach this process's on-demand features (then `on_demand_traced`).
    TraceOnDemand(u32),
    /// Open the flow's thread picker with the process's live threads (`FlowView::open_picker`).
    PickThread,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Table,
    Detail,
    Flow,
}

/// How many intervals of history the detail charts keep.
pub const HISTORY: usize = 600;

/// One process's counts of each charted category (`category::CHARTED`) over the last
/// intervals, oldest first.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct History {
    series: BTreeMap<Category, VecDeque<u64>>,
}

impl History {
    fn push(&mut self, p: &ProcessSnapshot) {
        for category in CHARTED {
            let series = self.series.entry(category).or_default();
            if series.len() == HISTORY {
                series.pop_front();
            }
            series.push_back(category.count(&p.interval).unwrap_or(0));
        }
    }

    /// A category's counts, oldest first (empty when it is not charted).
    pub fn of(&self, category: Category) -> &VecDeque<u64> {
        static EMPTY: VecDeque<u64> = VecDeque::new();
        self.series.get(&category).unwrap_or(&EMPTY)
    }
}

#[derive(Debug)]
pub struct App {
    /// The snapshot on screen.
    pub snapshot: Option<Snapshot>,
    /// While paused, the newest snapshot waits here.
    pending: Option<Snapshot>,
    pub history: BTreeMap<u32, History>,
    /// Each sampled process's stacks since the dashboard first saw it sampled.
    pub sampled: BTreeMap<u32, SampledSince>,
    pub selected: Option<u32>,
    pub sort: Column,
    pub descending: bool,
    /// Show only this runtime's processes.
    pub runtime: Option<&'static str>,
    pub view: View,
    pub help: bool,
    pub paused: bool,
    /// A line for the user (the path of an exported file).
    pub status: Option<String>,
    pub interval: Duration,
    /// What is traced, for the title: `all runtime processes` or `PID 1234`.
    pub scope: String,
    /// Rows a page moves (set by drawing, from the table's height).
    pub page: usize,
    /// The flow being watched, in the flow view.
    pub flow: Option<FlowView>,
    /// Leaving the flow view quits (`ustat --flow`).
    pub flow_only: bool,
}

impl App {
    pub fn new(interval: Duration, scope: String) -> Self {
        Self {
            snapshot: None,
            pending: None,
            history: BTreeMap::new(),
            sampled: BTreeMap::new(),
            selected: None,
            sort: Column::Rate(Category::Gc),
            descending: true,
            runtime: None,
            view: View::Table,
            help: false,
            paused: false,
            status: None,
            interval,
            scope,
            page: 10,
            flow: None,
            flow_only: false,
        }
    }

    /// What the keys act on now.
    pub fn mode(&self) -> Mode {
        match (&self.flow, self.view) {
            (Some(flow), View::Flow) if flow.editing.is_some() => Mode::Typing,
            (Some(_), View::Flow) => Mode::Flow,
            _ => Mode::Dashboard,
        }
    }

    /// The flow the loop opened (for `Effect::OpenFlow`), or why it could not.
    pub fn flow_opened(&mut self, result: Result<FlowView, String>) {
        match result {
            Ok(flow) => {
                self.flow = Some(flow);
                self.view = View::Flow;
            }
            Err(e) => self.status = Some(format!("cannot follow the calls: {e}")),
        }
    }

    /// A line for the flow view (where the folded stacks went).
    pub fn flow_status(&mut self, status: String) {
        if let Some(flow) = &mut self.flow {
            flow.status = Some(status);
        }
    }

    /// Takes a new snapshot: history and sampled stacks always grow; the screen changes
    /// unless paused.
    pub fn apply(&mut self, snapshot: Snapshot) {
        for p in &snapshot.processes {
            self.history.entry(p.pid).or_default().push(p);
            if let Some(sampled) = &p.sampled {
                self.sampled.entry(p.pid).or_default().add(sampled);
            }
        }
        let listed = |pid: &u32| snapshot.processes.iter().any(|p| p.pid == *pid);
        self.history.retain(|pid, _| listed(pid));
        self.sampled.retain(|pid, _| listed(pid));
        if self.paused {
            self.pending = Some(snapshot);
        } else {
            self.snapshot = Some(snapshot);
            self.keep_selection();
        }
    }

    /// The table's rows: filtered by runtime, sorted, ties broken by PID.
    pub fn rows(&self) -> Vec<&ProcessSnapshot> {
        let Some(snapshot) = &self.snapshot else {
            return Vec::new();
        };
        let interval = snapshot.interval;
        let mut rows: Vec<&ProcessSnapshot> = snapshot
            .processes
            .iter()
            .filter(|p| self.runtime.is_none_or(|r| p.runtime == r))
            .collect();
        rows.sort_by(|a, b| {
            let order = self.sort.compare(a, b, interval);
            let order = if self.descending {
                order.reverse()
            } else {
                order
            };
            order.then(a.pid.cmp(&b.pid))
        });
        rows
    }

    /// The selected row's index in `rows()`.
    pub fn selected_index(&self) -> Option<usize> {
        let pid = self.selected?;
        self.rows().iter().position(|p| p.pid == pid)
    }

    pub fn selected_process(&self) -> Option<&ProcessSnapshot> {
        let pid = self.selected?;
        self.snapshot
            .as_ref()?
            .processes
            .iter()
            .find(|p| p.pid == pid)
    }

    /// Keeps a selection while there are rows: the same process when it is still there.
    fn keep_selection(&mut self) {
        let rows = self.rows();
        if self
            .selected
            .is_none_or(|pid| !rows.iter().any(|p| p.pid == pid))
        {
            self.selected = rows.first().map(|p| p.pid);
        }
    }

    fn move_selection(&mut self, delta: isize) {
        let rows = self.rows();
        if rows.is_empty() {
            return;
        }
        let current = self.selected_index().unwrap_or(0) as isize;
        let target = (current + delta).clamp(0, rows.len() as isize - 1) as usize;
        self.selected = Some(rows[target].pid);
    }

    pub fn update(&mut self, action: Action) -> Effect {
        self.status = None;
        if self.view == View::Flow && !self.help {
            return self.update_flow(action);
        }
        if self.help {
            match action {
                Action::Quit => return Effect::Quit,
                Action::ToggleHelp | Action::Back => self.help = false,
                _ => {}
            }
            return Effect::None;
        }
        match action {
            Action::Quit => return Effect::Quit,
            Action::Up => self.move_selection(-1),
            Action::Down => self.move_selection(1),
            Action::PageUp => self.move_selection(-(self.page as isize)),
            Action::PageDown => self.move_selection(self.page as isize),
            Action::First => self.move_selection(isize::MIN / 2),
            Action::Last => self.move_selection(isize::MAX / 2),
            Action::OpenDetail if self.selected_process().is_some() => self.view = View::Detail,
            Action::Back => self.view = View::Table,
            Action::NextSort => {
                self.sort = self.sort.next();
                // Text columns read best A to Z, numbers biggest first.
                self.descending =
                    !matches!(self.sort, Column::Pid | Column::Command | Column::Runtime);
            }
            Action::ReverseSort => self.descending = !self.descending,
            Action::NextRuntime => {
                let names: Vec<&str> = ustat_runtimes::ALL.iter().map(|r| r.name).collect();
                self.runtime = match self.runtime {
                    None => names.first().copied(),
                    Some(current) => {
                        let i = names
                            .iter()
                            .position(|n| *n == current)
                            .unwrap_or(names.len());
                        names.get(i + 1).copied()
                    }
                };
                self.keep_selection();
            }
            Action::Export => return Effect::Export,
            Action::TogglePause => {
                self.paused = !self.paused;
                if !self.paused
                    && let Some(snapshot) = self.pending.take()
                {
                    self.snapshot = Some(snapshot);
                    self.keep_selection();
                }
            }
            Action::ToggleHelp => self.help = true,
            Action::OpenFlow => {
                if let Some(pid) = self.selected {
                    return Effect::OpenFlow(pid);
                }
            }
            Action::TraceOnDemand => {
                if let Some(pid) = self.selected {
                    return Effect::TraceOnDemand(pid);
                }
            }
            Action::ExportFolded => {
                if let Some(pid) = self.selected {
                    return self.export_sampled(pid);
                }
            }
            _ => {}
        }
        Effect::None
    }

    /// The folded lines of `pid`'s sampled stacks to write, or a line saying why there are
    /// none.
    fn export_sampled(&mut self, pid: u32) -> Effect {
        let command = self.selected_process().map_or("", |p| p.command.as_str());
        let mut folded = FoldedStacks::new();
        if let Some(since) = self.sampled.get(&pid) {
            folded.add(&process_label(pid, command), &since.as_sampled());
        }
        let lines: Vec<String> = folded.lines().collect();
        if lines.is_empty() {
            let why = match self.sampled.get(&pid) {
                None => "it is not sampled",
                Some(since) if since.samples == 0 => "no samples yet",
                Some(_) => "all its samples fell in stacks beyond those kept",
            };
            self.status = Some(format!("PID {pid}: no sampled stacks to write ({why})"));
            return Effect::None;
        }
        Effect::ExportSampled { pid, lines }
    }

    /// The loop reports where the sampled stacks went (for `Effect::ExportSampled`).
    pub fn sampled_written(&mut self, pid: u32, result: Result<std::path::PathBuf, String>) {
        self.status = Some(match result {
            Ok(path) => format!("PID {pid}: sampled stacks written to {}", path.display()),
            Err(e) => format!("PID {pid}: sampled stacks not written: {e}"),
        });
    }

    /// The loop reports which on-demand features it attached (for `Effect::TraceOnDemand`).
    pub fn on_demand_traced(&mut self, pid: u32, features: &[&str]) {
        self.status = Some(if features.is_empty() {
            format!("PID {pid}: no on-demand probes left to turn on")
        } else {
            format!("PID {pid}: now tracing {}", features.join(" and "))
        });
    }

    fn update_flow(&mut self, action: Action) -> Effect {
        let Some(flow) = &mut self.flow else {
            self.view = View::Table;
            return Effect::None;
        };
        flow.status = None;
        if let Some((_, text)) = &mut flow.editing {
            match action {
                Action::Type(c) if !c.is_control() && text.len() < ustat_common::PREFIX_LEN => {
                    text.push(c)
                }
                Action::Erase => {
                    text.pop();
                }
                Action::Clear => text.clear(),
                Action::Back => flow.editing = None,
                Action::Commit if flow.commit_edit() => {
                    return Effect::FilterFlow {
                        class: flow.class_prefix.clone(),
                        method: flow.method_prefix.clone(),
                    };
                }
                Action::Quit => return Effect::Quit,
                _ => {}
            }
            return Effect::None;
        }
        if flow.picking.is_some() {
            match action {
                Action::Up => flow.move_pick(-1),
                Action::Down => flow.move_pick(1),
                Action::PageUp | Action::First => flow.move_pick(isize::MIN / 2),
                Action::PageDown | Action::Last => flow.move_pick(isize::MAX / 2),
                Action::Fold | Action::Commit => flow.pick(),
                Action::Back | Action::NextThread => flow.picking = None,
                Action::Quit => return Effect::Quit,
                _ => {}
            }
            return Effect::None;
        }
        match action {
            Action::Quit => return Effect::Quit,
            Action::Back => {
                if self.flow_only {
                    return Effect::Quit;
                }
                self.flow = None;
                self.view = View::Detail;
                return Effect::CloseFlow;
            }
            Action::Up => flow.move_cursor(-1),
            Action::Down => flow.move_cursor(1),
            Action::PageUp => flow.move_cursor(-(self.page as isize)),
            Action::PageDown => flow.move_cursor(self.page as isize),
            Action::First => flow.move_cursor(isize::MIN / 2),
            Action::Last => flow.follow_newest(),
            Action::Fold => flow.toggle_fold(),
            Action::NextThread => return Effect::PickThread,
            Action::EditClass => flow.editing = Some((Field::Class, flow.class_prefix.clone())),
            Action::EditMethod => flow.editing = Some((Field::Method, flow.method_prefix.clone())),
            Action::Slower => flow.slower(),
            Action::Faster => flow.faster(),
            Action::TogglePause => flow.toggle_pause(),
            Action::ExportFolded => return Effect::ExportFolded(flow.pid),
            Action::ToggleHelp => self.help = true,
            _ => {}
        }
        Effect::None
    }

    /// The loop reports an export's result here.
    pub fn exported(&mut self, result: Result<std::path::PathBuf, String>) {
        self.status = Some(match result {
            Ok(path) => format!("snapshot written to {}", path.display()),
            Err(e) => format!("export failed: {e}"),
        });
    }
}

#[cfg(test)]
pub mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::snapshot::{Counters, ProcessSnapshot};

    pub fn process(
        pid: u32,
        runtime: &'static str,
        command: &str,
        gcs: u64,
        calls: u64,
    ) -> ProcessSnapshot {
        ProcessSnapshot {
            sampled: None,
            pid,
            runtime,
            command: command.into(),
            exited: false,
            interval: Counters {
                gc_count: gcs,
                method_calls: calls,
                ..Counters::default()
            },
            total: Counters {
                gc_count: gcs * 10,
                method_calls: calls * 10,
                ..Counters::default()
            },
            pause: None,
            pause_total: None,
            gc_kinds: vec![],
            threads_live: 3,
            threads: vec![],
            top_methods: vec![],
            top_allocations: vec![],
            top_monitors: vec![],
            top_exceptions: vec![],
            pools: vec![],
            collectors: vec![],
            missing: vec![],
            refused: vec![],
            traced: ustat_runtimes::by_name(runtime)
                .map(|r| {
                    r.features
                        .iter()
                        .flat_map(|f| f.categories.iter().copied())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    pub fn snapshot(processes: Vec<ProcessSnapshot>) -> Snapshot {
        let mut s = Snapshot::empty(SystemTime::UNIX_EPOCH, Duration::from_secs(1));
        s.processes = processes;
        s
    }

    fn app() -> App {
        let mut app = App::new(Duration::from_secs(1), "all runtime processes".into());
        app.apply(snapshot(vec![
            process(10, "jvm", "java", 1, 500),
            process(20, "python", "python3", 5, 0),
            process(30, "jvm", "kafka", 3, 100),
        ]));
        app
    }

    fn pids(app: &App) -> Vec<u32> {
        app.rows().iter().map(|p| p.pid).collect()
    }

    #[test]
    fn every_category_with_a_table_column_has_one_rate_column() {
        for category in Category::ALL {
            let columns = Column::ALL
                .iter()
                .filter(|c| **c == Column::Rate(category))
                .count();
            let expected = usize::from(category.table_column().is_some());
            assert_eq!(columns, expected, "{category:?}");
        }
    }

    #[test]
    fn sorted_by_gc_rate_biggest_first_and_the_top_row_selected() {
        let app = app();
        assert_eq!(pids(&app), [20, 30, 10]);
        assert_eq!(app.selected, Some(20));
    }

    #[test]
    fn sorting_cycles_through_the_columns_and_reverses() {
        let mut app = app();
        app.update(Action::NextSort); // PAUSE p99: all equal, PID order
        app.update(Action::NextSort); // CLASS/s
        app.update(Action::NextSort); // THREAD/s
        app.update(Action::NextSort); // ALLOC/s
        app.update(Action::NextSort); // CALLS/s
        assert_eq!(app.sort, Column::Rate(Category::MethodCall));
        assert_eq!(pids(&app), [10, 30, 20]);
        app.update(Action::ReverseSort);
        assert_eq!(pids(&app), [20, 30, 10]);
        app.update(Action::NextSort); // PID, ascending
        assert_eq!(pids(&app), [10, 20, 30]);
        app.update(Action::NextSort); // COMMAND
        assert_eq!(pids(&app), [10, 30, 20]);
        app.update(Action::NextSort); // RUNTIME
        app.update(Action::NextSort); // CPU%, biggest first: none sampled, PID order
        assert_eq!(app.sort, Column::CpuPercent);
        assert!(app.descending);
        assert_eq!(pids(&app), [10, 20, 30]);
    }

    #[test]
    fn selection_moves_within_bounds_and_follows_its_process() {
        let mut app = app();
        app.update(Action::Down);
        assert_eq!(app.selected, Some(30));
        app.update(Action::Last);
        assert_eq!(app.selected, Some(10));
        app.update(Action::Down);
        assert_eq!(app.selected, Some(10));
        app.update(Action::First);
        assert_eq!(app.selected, Some(20));
        app.update(Action::Down);
        // A new snapshot reorders the rows; the selection stays on PID 30.
        app.apply(snapshot(vec![
            process(10, "jvm", "java", 9, 0),
            process(30, "jvm", "kafka", 0, 0),
        ]));
        assert_eq!(app.selected, Some(30));
        // PID 30 exits: the selection goes to the first row.
        app.apply(snapshot(vec![process(10, "jvm", "java", 9, 0)]));
        assert_eq!(app.selected, Some(10));
    }

    #[test]
    fn the_runtime_filter_cycles_through_runtimes_then_all() {
        let mut app = app();
        app.update(Action::NextRuntime);
        assert_eq!(app.runtime, Some("jvm"));
        assert_eq!(pids(&app), [30, 10]);
        assert_eq!(app.selected, Some(30));
        for _ in 0..ustat_runtimes::ALL.len() {
            app.update(Action::NextRuntime);
        }
        assert_eq!(app.runtime, None);
        assert_eq!(pids(&app).len(), 3);
    }

    #[test]
    fn detail_help_pause_export_and_quit() {
        let mut app = app();
        assert_eq!(app.update(Action::OpenDetail), Effect::None);
        assert_eq!(app.view, View::Detail);
        app.update(Action::Back);
        assert_eq!(app.view, View::Table);
        app.update(Action::ToggleHelp);
        assert!(app.help);
        // While help is open, keys other than quit only close it.
        app.update(Action::Down);
        assert_eq!(app.selected, Some(20));
        app.update(Action::Back);
        assert!(!app.help);
        assert_eq!(app.update(Action::Export), Effect::Export);
        app.update(Action::TogglePause);
        app.apply(snapshot(vec![process(99, "jvm", "new", 1, 1)]));
        assert_eq!(
            pids(&app),
            [20, 30, 10],
            "paused: the screen keeps its snapshot"
        );
        app.update(Action::TogglePause);
        assert_eq!(pids(&app), [99]);
        assert_eq!(app.update(Action::Quit), Effect::Quit);
    }

    fn sampled(stacks: &[(&[&str], u64)]) -> crate::snapshot::Sampled {
        use crate::snapshot::{FrameKind, Sampled, SampledFrame, SampledStack};
        let stacks: Vec<SampledStack> = stacks
            .iter()
            .map(|(names, count)| SampledStack {
                frames: names
                    .iter()
                    .map(|n| SampledFrame {
                        function: (*n).into(),
                        file: "w.py".into(),
                        line: 3,
                        kind: FrameKind::Managed,
                    })
                    .collect(),
                count: *count,
            })
            .collect();
        Sampled {
            hz: 99,
            samples: stacks.iter().map(|s| s.count).sum(),
            stacks,
            unreadable: None,
        }
    }

    #[test]
    fn sampled_stacks_add_up_while_paused_and_x_writes_them_as_folded_stacks() {
        let mut app = App::new(Duration::from_secs(1), String::new());
        let mut python = process(20, "python", "python3", 0, 0);
        python.sampled = Some(sampled(&[(&["main", "a"], 3)]));
        app.apply(snapshot(vec![
            python.clone(),
            process(10, "jvm", "java", 1, 0),
        ]));
        app.update(Action::TogglePause);
        python.sampled = Some(sampled(&[(&["main", "a"], 2), (&["main"], 1)]));
        app.apply(snapshot(vec![
            python.clone(),
            process(10, "jvm", "java", 1, 0),
        ]));
        // A quiet interval takes nothing away.
        python.sampled = Some(sampled(&[]));
        app.apply(snapshot(vec![
            python.clone(),
            process(10, "jvm", "java", 1, 0),
        ]));
        assert_eq!(app.sampled[&20].samples, 6);
        assert_eq!(app.sampled[&20].intervals, 3);

        app.selected = Some(20);
        assert_eq!(
            app.update(Action::ExportFolded),
            Effect::ExportSampled {
                pid: 20,
                lines: vec![
                    "python3;main (w.py:3) 1".into(),
                    "python3;main (w.py:3);a (w.py:3) 5".into()
                ],
            }
        );
        app.sampled_written(20, Err("Permission denied".into()));
        assert_eq!(
            app.status.as_deref(),
            Some("PID 20: sampled stacks not written: Permission denied")
        );
        app.selected = Some(10);
        assert_eq!(app.update(Action::ExportFolded), Effect::None);
        assert_eq!(
            app.status.as_deref(),
            Some("PID 10: no sampled stacks to write (it is not sampled)")
        );
        app.apply(snapshot(vec![process(10, "jvm", "java", 1, 0)]));
        assert!(app.sampled.is_empty(), "gone processes drop their samples");
    }

    #[test]
    fn the_cpu_column_sorts_sampled_processes_above_unsampled_ones() {
        let mut app = App::new(Duration::from_secs(1), String::new());
        let mut idle = process(30, "python", "idle", 0, 0);
        idle.sampled = Some(sampled(&[]));
        let mut busy = process(20, "python", "busy", 0, 0);
        busy.sampled = Some(sampled(&[(&["main"], 150)]));
        app.apply(snapshot(vec![process(10, "jvm", "java", 0, 0), idle, busy]));
        app.sort = Column::CpuPercent;
        assert_eq!(pids(&app), [20, 30, 10]);
    }

    #[test]
    fn history_keeps_the_last_intervals() {
        let mut app = App::new(Duration::from_secs(1), String::new());
        for i in 0..(HISTORY as u64 + 5) {
            app.apply(snapshot(vec![process(1, "jvm", "java", i, 0)]));
        }
        let gc = app.history[&1].of(Category::Gc);
        assert_eq!(gc.len(), HISTORY);
        assert_eq!(gc.back(), Some(&(HISTORY as u64 + 4)));
        app.apply(snapshot(vec![]));
        assert!(app.history.is_empty(), "gone processes drop their history");
    }
}
