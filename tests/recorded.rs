//! The real dashboard loop and the real CSV loop, driven by a recorded source: no root, no
//! kernel, no terminal. Between the unit tests (one function at a time) and the end-to-end
//! tests (the real binary on the real kernel): keys go in, screens and CSV rows come out.

use std::{collections::VecDeque, io, path::Path, time::Duration};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::{Terminal, backend::TestBackend};
use ustat::{
    commands::watch::csv_loop,
    export::{CsvWriter, MethodsCsvWriter},
    recorded::RecordedSource,
    snapshot::CallSource as _,
    tui::{self, Events, Step, app::App},
};

fn recording(name: &str) -> RecordedSource {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/recorded")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    RecordedSource::parse(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// What a scripted user does next.
enum Do {
    /// Hand this to the loop.
    Step(Step),
    /// Keep the screen as it is now, under this name.
    Look(&'static str),
}

fn key(code: KeyCode) -> Do {
    Do::Step(Step::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

const INTERVAL: Do = Do::Step(Step::Interval);
const IDLE: Do = Do::Step(Step::Idle);

/// Keys and interval ticks in order, and the screens seen on the way.
struct Script {
    steps: VecDeque<Do>,
    screens: Vec<(&'static str, String)>,
}

impl Events<TestBackend> for Script {
    fn next(&mut self, _wait: Duration, terminal: &Terminal<TestBackend>) -> io::Result<Step> {
        loop {
            match self.steps.pop_front() {
                Some(Do::Look(name)) => self.screens.push((name, terminal.backend().to_string())),
                Some(Do::Step(step)) => return Ok(step),
                None => return Err(io::Error::other("the script ended before the loop quit")),
            }
        }
    }
}

#[test]
fn the_dashboard_loop_from_a_recording() {
    let mut source = recording("three_runtimes.jsonl");
    let mut app = App::new(Duration::from_secs(1), "all runtime processes".into());
    let mut terminal = Terminal::new(TestBackend::new(110, 30)).unwrap();
    let mut script = Script {
        steps: VecDeque::from([
            Do::Look("waiting"),
            INTERVAL,
            Do::Look("table"),
            // Sorted by GC/s: java (3), node (2), gunicorn (1); java is selected.
            key(KeyCode::Enter),
            Do::Look("detail_of_java"),
            key(KeyCode::Esc),
            key(KeyCode::Down),
            key(KeyCode::Down),
            key(KeyCode::Enter),
            Do::Look("detail_of_gunicorn_says_why"),
            key(KeyCode::Esc),
            key(KeyCode::Home),
            INTERVAL,
            // Follow java's calls: the recorded batch arrives at the next turn of the loop.
            key(KeyCode::Char('f')),
            IDLE,
            Do::Look("flow_of_java"),
            // Back from the flow to java's detail, and back to the table.
            key(KeyCode::Esc),
            key(KeyCode::Esc),
            // The last interval, 0.4 s long (rates are per second): node exited in it.
            INTERVAL,
            Do::Look("last_interval"),
            key(KeyCode::Char('q')),
        ]),
        screens: Vec::new(),
    };
    tui::run(&mut source, &mut app, &mut terminal, &mut script, &|| false).unwrap();

    assert!(script.steps.is_empty(), "q quit the loop");
    assert_eq!(source.intervals_left(), 0, "each tick polled once");
    assert_eq!(source.watched(), None, "Esc closed the flow");
    let names: Vec<&str> = script.screens.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "waiting",
            "table",
            "detail_of_java",
            "detail_of_gunicorn_says_why",
            "flow_of_java",
            "last_interval"
        ]
    );
    for (name, screen) in &script.screens {
        insta::assert_snapshot!(*name, screen);
    }
    let flow = &script.screens[4].1;
    assert!(flow.contains("-> Tree.a"), "{flow}");
    assert!(flow.contains("<- Tree.b 2.50ms"), "{flow}");
}

/// `ustat --csv - -n 2`: two intervals, then the loop ends; the third is never polled.
#[test]
fn the_csv_loop_stops_after_count_intervals() {
    let mut source = recording("three_runtimes.jsonl");
    let mut rows = Vec::new();
    let mut methods = Vec::new();
    {
        let mut writer = CsvWriter::new(&mut rows).unwrap();
        let mut methods = MethodsCsvWriter::new(&mut methods).unwrap();
        csv_loop(
            &mut source,
            &mut writer,
            Some(&mut methods),
            Some(2),
            |_| false,
        )
        .unwrap();
    }
    assert_eq!(source.intervals_left(), 1);
    let rows = String::from_utf8(rows).unwrap();
    assert_eq!(rows.lines().count(), 1 + 2 * 3, "{rows}");
    insta::assert_snapshot!("csv_two_intervals", rows);
    let methods = String::from_utf8(methods).unwrap();
    insta::assert_snapshot!("methods_csv_two_intervals", methods);
}

/// Ctrl-C in the third interval: that interval (0.4 s) is written too, then the loop ends.
#[test]
fn the_csv_loop_writes_the_interval_a_stop_cut_short() {
    let mut source = recording("three_runtimes.jsonl");
    let mut rows = Vec::new();
    let mut waits = 0;
    {
        let mut writer = CsvWriter::<&mut Vec<u8>>::new(&mut rows).unwrap();
        let ctrl_c_in_the_third = |_: &mut _| {
            waits += 1;
            waits == 3
        };
        csv_loop(
            &mut source,
            &mut writer,
            None::<&mut MethodsCsvWriter<io::Sink>>,
            None,
            ctrl_c_in_the_third,
        )
        .unwrap();
    }
    assert_eq!(waits, 3);
    assert_eq!(source.intervals_left(), 0);
    let rows = String::from_utf8(rows).unwrap();
    let last: Vec<&str> = rows.lines().skip(1 + 2 * 3).collect();
    assert_eq!(last.len(), 3, "{rows}");
    assert!(
        last.iter().all(|row| row.contains(",0.400,")),
        "the partial interval's length: {last:?}"
    );
    let node = last.iter().find(|row| row.contains(",8080,")).unwrap();
    assert!(
        node.ends_with(",150,1,0,,,,,,,2,2"),
        "node's requests, its exit and no losses: {node}"
    );
}

/// Recorded calls of a process not yet seen cannot be followed: the same message as the
/// kernel source's.
#[test]
fn a_flow_needs_a_traced_process() {
    let mut source = recording("three_runtimes.jsonl");
    let err = source.watch_flow(4242).unwrap_err();
    assert_eq!(err.to_string(), "process 4242 is not traced");
}
