//! Drawing: one file per region of the screen. Reads `App`; changes only view state (the
//! page size for PgUp/PgDn, the flow view's cursor).
//!
//! ```text
//! ┌─────────────────────────────────────────────────────────────────────────────┐
//! │ ustat  all runtime processes · 5 processes · every 1 s · sort GC/s ▼ · lost │ header.rs
//! ├─────────────────────────────────────────────────────────────────────────────┤
//! │ PID  COMMAND  RUNTIME  GC/s  PAUSE p99  CLASS/s  THREAD/s  ALLOC/s  CALLS/s │ table.rs   (View::Table)
//! │▶ 4242 java    jvm       3    2.65ms      7        2        15.3k    2.1M    │
//! │   or: one process — notes, charts | GC pauses, hot functions (sampled.rs),  │ detail.rs  (View::Detail)
//! │       top methods | allocations, threads                                    │
//! │   or: flow status, the call tree, per-method timing, the filter being typed │ flow.rs    (View::Flow)
//! │              ┌ Keys (Esc closes) ─────────────┐                             │ help.rs    (? over any view)
//! │              └────────────────────────────────┘                             │
//! ├─────────────────────────────────────────────────────────────────────────────┤
//! │ ! a warning, or where an export went                                        │ header.rs  (notice)
//! │  q  quit   ?  help   ↑↓  select   ⏎  details  ...                           │ header.rs  (footer)
//! └─────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Below 40×8 only a one-line summary is drawn (`header::draw_tiny`).

mod detail;
mod fit;
mod flow;
mod header;
mod help;
mod sampled;
mod table;

use ratatui::{
    Frame,
    layout::{Constraint, Layout},
    style::{Color, Modifier, Style},
    text::Span,
};

use super::{
    app::{App, View},
    keys::{FLOW_HELP, HELP},
};

/// Below this, only a one-line summary fits.
const MIN_WIDTH: u16 = 40;
const MIN_HEIGHT: u16 = 8;

const ACCENT: Color = Color::Cyan;
const WARN: Color = Color::Yellow;

/// Draws the whole screen; each region is drawn by its own module.
pub fn draw(frame: &mut Frame, app: &mut App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        header::draw_tiny(frame, area, app);
        return;
    }
    let [top, body, notice, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    header::draw_header(frame, top, app);
    match app.view {
        View::Table => table::draw_table(frame, body, app),
        View::Detail => match app.selected_process() {
            Some(process) => detail::draw_detail(frame, body, app, process),
            None => table::draw_table(frame, body, app),
        },
        View::Flow => flow::draw(frame, body, app),
    }
    header::draw_notice(frame, notice, app);
    header::draw_footer(frame, footer, app);
    if app.help {
        let keys = if app.view == View::Flow {
            FLOW_HELP
        } else {
            HELP
        };
        help::draw_help(frame, area, keys);
    }
}

/// The view's name at the start of its header line.
fn badge(name: &'static str) -> Span<'static> {
    Span::styled(
        name,
        Style::new()
            .fg(Color::Black)
            .bg(ACCENT)
            .add_modifier(Modifier::BOLD),
    )
}

#[cfg(test)]
mod tests {
    use ratatui::{Terminal, backend::TestBackend};
    use ustat_runtimes::Missing;

    use ustat_common::category;

    use super::*;
    use crate::{
        snapshot::{
            FrameKind, GcKind, PauseStats, PoolUsage, Ranked, Sampled, SampledFrame, SampledStack,
        },
        tui::app::{
            Action, App,
            tests::{process, snapshot},
        },
    };

    fn ranked(name: &str, interval: u64, total: u64, bytes: u64) -> Ranked {
        Ranked {
            name: name.into(),
            interval,
            total,
            interval_value: bytes,
            total_value: bytes * 10,
            timing: None,
            timing_total: None,
        }
    }

    /// Three processes: a JVM with everything on, a JVM without the extra probes, and one
    /// whose command tried to smuggle an escape sequence (sanitized by the source).
    fn busy_app() -> App {
        let mut app = App::new(
            std::time::Duration::from_secs(1),
            "all runtime processes".into(),
        );
        let mut rich = process(4242, "jvm", "java", 3, 2_100_000);
        rich.interval.class_loaded = 7;
        rich.interval.threads_started = 2;
        rich.interval.objects_allocated = 15_300;
        rich.interval.bytes_allocated = 2_400_000;
        rich.pause = Some(PauseStats {
            count: 3,
            p50_ns: 950_000,
            p99_ns: 2_650_000,
            max_ns: 2_650_000,
        });
        rich.pause_total = Some(PauseStats {
            count: 30,
            p50_ns: 900_000,
            p99_ns: 3_100_000,
            max_ns: 4_000_000,
        });
        rich.gc_kinds = vec![
            GcKind {
                kind: "major",
                interval: 1,
                total: 4,
                pause_ns_total: 0,
                collected_total: 0,
            },
            GcKind {
                kind: "minor",
                interval: 2,
                total: 26,
                pause_ns_total: 0,
                collected_total: 0,
            },
        ];
        rich.pools = vec![PoolUsage {
            name: "Copy: Eden Space".into(),
            gcs: 2,
            reclaimed_bytes: 64 << 20,
        }];
        rich.top_methods = vec![
            ranked("Workload.marker", 2_000_000, 9_000_000, 0),
            ranked("java.lang.Thread.sleep", 1000, 4000, 0),
            ranked("java.lang.String.hashCode", 12, 91, 0),
        ];
        rich.top_allocations = vec![
            ranked("[B", 9000, 90_000, 1_200_000),
            ranked("java.lang.String", 6300, 63_000, 151_200),
        ];
        rich.threads = vec![
            "java".into(),
            "VM Thread".into(),
            "C2 CompilerThre".into(),
            "Thread-0".into(),
        ];
        rich.threads_live = 4;
        let mut plain = process(5151, "jvm", "kafka", 0, 0);
        plain.missing = vec![
            Missing {
                categories: vec![category::METHOD_CALL],
                text: "method calls: not traced; start the JVM with -XX:+ExtendedDTraceProbes"
                    .into(),
            },
            Missing {
                categories: vec![category::OBJECT_ALLOC],
                text: "allocations: not traced; start the JVM with -XX:+ExtendedDTraceProbes"
                    .into(),
            },
        ];
        let odd = process(6000, "jvm", "?[2Jevil", 1, 10);
        let mut python = process(7070, "python", "gunicorn", 5, 0);
        python.gc_kinds = vec![
            GcKind {
                kind: "gen0",
                interval: 4,
                total: 40,
                pause_ns_total: 0,
                collected_total: 0,
            },
            GcKind {
                kind: "gen2",
                interval: 1,
                total: 5,
                pause_ns_total: 0,
                collected_total: 12_345,
            },
        ];
        python.missing = vec![
            Missing {
                categories: vec![category::IMPORT],
                text: "imports: not traced: this CPython was built without USDT probes (--with-dtrace)".into(),
            },
            Missing {
                categories: vec![category::METHOD_CALL],
                text: "function calls: not traced: this CPython has no function__entry probe".into(),
            },
        ];
        let mut node = process(8080, "node", "node", 2, 0);
        node.total.http_requests = 1234;
        let mut sampled = process(9090, "python", "python3.12", 0, 0);
        sampled.sampled = Some(busy_samples());
        let all = vec![rich, plain, odd, python, node, sampled];
        for _ in 0..20 {
            app.apply(snapshot(all.clone()));
        }
        let mut last = snapshot(all);
        last.warnings = vec![
            "cannot attach hotspot:object__alloc in /usr/lib/jvm/x/libjvm.so: not permitted".into(),
        ];
        app.apply(last);
        app
    }

    /// One second of a CPython busy in `busy_a` three times as long as in `busy_b`, with a
    /// recursion, a C function and a frame that could not be named: 99 samples at 99 Hz.
    fn busy_samples() -> Sampled {
        let frame = |function: &str, file: &str, line: u32, kind: FrameKind| SampledFrame {
            function: function.into(),
            file: file.into(),
            line,
            kind,
        };
        let python =
            |function: &str, line: u32| frame(function, "app.py", line, FrameKind::Managed);
        let stack = |frames: Vec<SampledFrame>, count: u64| SampledStack { frames, count };
        let top = || vec![python("<module>", 1), python("Server.serve", 10)];
        let with = |more: Vec<SampledFrame>| [top(), more].concat();
        let stacks = vec![
            stack(with(vec![python("busy_a", 20)]), 60),
            stack(
                with(vec![frame(
                    "Handler.busy_b",
                    "/srv/www/a/long/path/to/the/application/handlers/busy.py",
                    30,
                    FrameKind::Managed,
                )]),
                20,
            ),
            stack(
                with(vec![
                    python("walk", 40),
                    python("walk", 40),
                    python("walk", 40),
                ]),
                10,
            ),
            stack(with(vec![frame("time.sleep", "", 0, FrameKind::Native)]), 5),
            stack(
                vec![python("<module>", 1), frame("?", "", 0, FrameKind::Unknown)],
                4,
            ),
        ];
        Sampled {
            hz: 99,
            samples: stacks.iter().map(|s| s.count).sum(),
            stacks,
            unreadable: None,
        }
    }

    fn render(app: &mut App, width: u16, height: u16) -> Terminal<TestBackend> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|frame| draw(frame, app)).unwrap();
        terminal
    }

    #[test]
    fn table() {
        let mut app = busy_app();
        insta::assert_snapshot!(render(&mut app, 100, 12).backend());
    }

    #[test]
    fn table_at_80_by_24() {
        let mut app = busy_app();
        insta::assert_snapshot!(render(&mut app, 80, 24).backend());
    }

    /// Columns others add degrade well: the least important go first, headers stay whole.
    #[test]
    fn narrow_tables_drop_the_least_important_columns_whole() {
        use super::table::layout;
        use crate::tui::app::Column;
        let titles = |width| -> Vec<&str> {
            layout(
                &Column::ALL,
                Column::Rate(crate::category::Category::Gc),
                width,
            )
            .iter()
            .map(|(c, _)| c.title())
            .collect()
        };
        assert_eq!(titles(200).len(), Column::ALL.len());
        // At 80 every exact column shows; the sampled CPU% needs a little more room.
        assert_eq!(titles(80).len(), Column::ALL.len() - 1, "{:?}", titles(80));
        assert!(!titles(80).contains(&"CPU%"), "{:?}", titles(80));
        let narrow = titles(60);
        assert!(narrow.starts_with(&["PID", "COMMAND"]), "{narrow:?}");
        assert!(
            narrow.contains(&"GC/s") && !narrow.contains(&"CLASS/s"),
            "{narrow:?}"
        );
        for width in [40, 60, 80, 120, 200] {
            let columns = layout(
                &Column::ALL,
                Column::Rate(crate::category::Category::Gc),
                width,
            );
            let used: u16 = columns.iter().map(|(_, w)| w + 1).sum();
            assert!(used <= width, "{width}: {columns:?}");
            for (c, w) in &columns {
                assert!(usize::from(*w) >= c.title().chars().count(), "{c:?} in {w}");
            }
        }
    }

    #[test]
    fn long_commands_end_in_an_ellipsis_at_80_columns() {
        let mut app = busy_app();
        if let Some(snapshot) = &mut app.snapshot {
            snapshot.processes[0].command =
                "java com.example.inventory.InventoryServiceMain".into();
        }
        let screen = render(&mut app, 80, 24).backend().to_string();
        assert!(screen.contains("java com.exam…"), "{screen}");
    }

    #[test]
    fn detail_of_a_jvm_with_every_probe() {
        let mut app = busy_app();
        app.update(Action::OpenDetail);
        insta::assert_snapshot!(render(&mut app, 110, 30).backend());
    }

    #[test]
    fn detail_of_a_jvm_without_the_flags_says_why() {
        let mut app = busy_app();
        app.selected = Some(5151);
        app.update(Action::OpenDetail);
        insta::assert_snapshot!(render(&mut app, 110, 30).backend());
    }

    #[test]
    fn detail_of_a_python_without_usdt_says_why() {
        let mut app = busy_app();
        app.selected = Some(7070);
        app.update(Action::OpenDetail);
        insta::assert_snapshot!(render(&mut app, 110, 30).backend());
    }

    #[test]
    fn detail_of_a_sampled_python() {
        let mut app = busy_app();
        app.selected = Some(9090);
        app.update(Action::OpenDetail);
        // A quiet interval (no samples) leaves what was sampled before on screen.
        let mut quiet = app.snapshot.clone().unwrap();
        for p in &mut quiet.processes {
            if let Some(sampled) = &mut p.sampled {
                sampled.samples = 0;
                sampled.stacks.clear();
            }
        }
        app.apply(quiet);
        insta::assert_snapshot!(render(&mut app, 110, 34).backend());
    }

    #[test]
    fn detail_of_a_python_whose_frames_cannot_be_read() {
        let mut app = App::new(std::time::Duration::from_secs(1), "PID 9090".into());
        let mut p = process(9090, "python", "python3.15", 0, 0);
        p.sampled = Some(Sampled {
            hz: 99,
            samples: 97,
            stacks: vec![],
            unreadable: Some("_Py_DebugOffsets version 3.15 is not one ustat knows".into()),
        });
        app.apply(snapshot(vec![p]));
        app.update(Action::OpenDetail);
        insta::assert_snapshot!(render(&mut app, 110, 30).backend());
    }

    #[test]
    fn detail_of_a_python_sampled_but_not_on_a_cpu_yet() {
        let mut app = App::new(std::time::Duration::from_secs(1), "PID 9090".into());
        let mut p = process(9090, "python", "python3.12", 0, 0);
        p.sampled = Some(Sampled {
            hz: 99,
            ..Sampled::default()
        });
        app.apply(snapshot(vec![p]));
        app.update(Action::OpenDetail);
        let screen = render(&mut app, 110, 30).backend().to_string();
        assert!(
            screen.contains("no samples yet: not on a CPU since sampling began"),
            "{screen}"
        );
        assert!(screen.contains("CPU now 0%"), "{screen}");
    }

    /// Narrower than every column needs: CPU% is the one that goes.
    #[test]
    fn a_narrow_table_drops_the_cpu_column_first() {
        let mut app = busy_app();
        let wide = render(&mut app, 100, 12).backend().to_string();
        assert!(wide.contains("CPU%"), "{wide}");
        let narrow = render(&mut app, 80, 12).backend().to_string();
        assert!(!narrow.contains("CPU%"), "{narrow}");
        assert!(narrow.contains("CALLS/s"), "{narrow}");
    }

    /// The flow view after a() -> b, b and a recursive d(), with per-method timing.
    fn flow_app() -> App {
        use crate::{
            flow::{FlowLine, Kind},
            snapshot::Timing,
            tui::flow::FlowView,
        };
        let mut app = busy_app();
        let mut view = FlowView::new(4242, "java (PID 4242, jvm)".into());
        let calls = [
            (Kind::Entry, 0, 1, 0),
            (Kind::Entry, 1, 2, 0),
            (Kind::Return, 1, 2, 4_000),
            (Kind::Entry, 1, 2, 0),
            (Kind::Return, 1, 2, 2_500_000),
            (Kind::Return, 0, 1, 2_600_000),
            (Kind::Entry, 0, 3, 0),
            (Kind::Entry, 1, 3, 0),
            (Kind::Return, 1, 3, 2_000),
            (Kind::Unwound, 0, 3, 9_000),
        ];
        view.push(
            calls
                .iter()
                .enumerate()
                .map(|(i, &(kind, depth, method, duration_ns))| FlowLine {
                    seq: i as u64,
                    ts_ns: 1_000_000_000 + i as u64 * 1_500,
                    pid: 4242,
                    tid: 4243,
                    kind,
                    depth,
                    method,
                    duration_ns,
                })
                .collect(),
        );
        for (method, name) in [(1, "Tree.a"), (2, "Tree.b"), (3, "Tree.d")] {
            view.labels.insert(method, name.into());
        }
        app.selected = Some(4242);
        app.flow_opened(Ok(view));
        if let Some(snapshot) = &mut app.snapshot {
            let timing = Timing {
                calls: 2,
                total_ns: 2_504_000,
                self_ns: 2_504_000,
                mean_ns: 1_252_000,
                p99_ns: 2_500_000,
            };
            snapshot.processes[0].top_methods[0].timing_total = Some(timing);
        }
        app
    }

    #[test]
    fn flow_view() {
        let mut app = flow_app();
        insta::assert_snapshot!(render(&mut app, 100, 24).backend());
    }

    #[test]
    fn flow_view_folded_and_filtering() {
        let mut app = flow_app();
        app.update(Action::First);
        app.update(Action::Fold);
        app.update(Action::EditClass);
        for c in "Tree".chars() {
            app.update(Action::Type(c));
        }
        insta::assert_snapshot!(render(&mut app, 100, 24).backend());
    }

    #[test]
    fn flow_thread_picker_at_80_by_24() {
        let mut app = flow_app();
        if let Some(flow) = &mut app.flow {
            flow.open_picker(vec![
                (4242, "java".into()),
                (4243, "main".into()),
                (4250, "C2 CompilerThre".into()),
            ]);
            flow.move_pick(2);
        }
        insta::assert_snapshot!(render(&mut app, 80, 24).backend());
    }

    #[test]
    fn help_overlay() {
        let mut app = busy_app();
        app.update(Action::ToggleHelp);
        insta::assert_snapshot!(render(&mut app, 100, 20).backend());
    }

    #[test]
    fn empty_host() {
        let mut app = App::new(
            std::time::Duration::from_secs(1),
            "all runtime processes".into(),
        );
        app.apply(snapshot(vec![]));
        insta::assert_snapshot!(render(&mut app, 100, 10).backend());
    }

    #[test]
    fn a_20_by_5_terminal() {
        let mut app = busy_app();
        insta::assert_snapshot!(render(&mut app, 20, 5).backend());
    }

    #[test]
    fn no_size_panics() {
        for view in [
            Action::Back,
            Action::OpenDetail,
            Action::ToggleHelp,
            Action::OpenFlow,
        ] {
            let mut app = if view == Action::OpenFlow {
                flow_app()
            } else {
                busy_app()
            };
            app.update(view);
            for width in (0..130).step_by(13) {
                for height in (0..45).step_by(5) {
                    render(&mut app, width, height);
                }
            }
        }
    }

    /// The facts that make each runtime's `missing` say all it can say.
    fn telling_facts(runtime: &str) -> Vec<ustat_runtimes::ProcessFacts> {
        let facts = |version: &str, resolved: &[&'static str]| ustat_runtimes::ProcessFacts {
            args: vec![],
            env: vec![],
            version: Some(version.into()),
            resolved: resolved.to_vec(),
        };
        match runtime {
            // JDK 19 and older name ExtendedDTraceProbes; 20 and later the specific flags.
            "jvm" => vec![facts("17.0.15", &[]), facts("21.0.2", &[])],
            // 3.11 with call probes: only under a profiler.
            "python" => vec![facts("3.11.2", &["calls"])],
            _ => vec![facts("", &[])],
        }
    }

    /// Every line a runtime module can put on screen, from its real texts: each feature's
    /// "not traced" line, what `missing` says for the facts that make it speak, and the
    /// flow's hint. A broken string (a stray backslash, a run of spaces) shows here.
    #[test]
    fn every_runtime_message() {
        for runtime in ustat_runtimes::ALL {
            let mut p = process(100, runtime.name, "app", 0, 0);
            p.traced = vec![];
            p.missing = runtime
                .features
                .iter()
                .map(|f| Missing {
                    categories: f.categories.to_vec(),
                    text: f.unavailable.to_string(),
                })
                .chain(
                    telling_facts(runtime.name)
                        .iter()
                        .flat_map(|facts| (runtime.missing)(facts)),
                )
                .collect();
            let mut app = App::new(std::time::Duration::from_secs(1), "PID 100".into());
            app.apply(snapshot(vec![p]));
            app.update(Action::OpenDetail);
            let detail = render(&mut app, 110, 40).backend().to_string();
            let flow = match runtime.flow {
                Some(_) => {
                    let view = crate::tui::flow::FlowView::new(100, "app (PID 100)".into())
                        .of_runtime(Some(runtime));
                    app.flow_opened(Ok(view));
                    render(&mut app, 110, 18).backend().to_string()
                }
                None => "(no flow)".to_string(),
            };
            let text = format!("binary: {}\n\n{detail}\n{flow}", runtime.binary_hint);
            assert!(
                !text.contains('\\'),
                "a backslash in {}'s texts",
                runtime.name
            );
            insta::assert_snapshot!(format!("messages_of_{}", runtime.name), text);
        }
    }
}
