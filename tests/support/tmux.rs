//! A real terminal: a tmux server of the test's own (its own socket), one session, read with
//! capture-pane and driven with send-keys. Every wait polls the screen for what must appear.

use std::{
    path::Path,
    process::{Command, Output},
    time::{Duration, Instant},
};

use super::DEADLINE;

pub struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    /// Starts `command` (run by sh) in a `width` x `height` terminal in `cwd`.
    pub fn start(cwd: &Path, width: u16, height: u16, command: &str) -> Self {
        let id = format!("ustat-test-{}-{}", std::process::id(), rand_suffix());
        let tmux = Self {
            socket: id.clone(),
            session: id,
        };
        let out = tmux.run(&[
            "new-session",
            "-d",
            "-s",
            &tmux.session,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "-c",
            cwd.to_str().unwrap(),
            command,
        ]);
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("run tmux (scripts/setup installs it)")
    }

    /// The screen's text.
    pub fn capture(&self) -> String {
        let out = self.run(&["capture-pane", "-p", "-t", &self.session]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A tmux format about the pane: `#{alternate_on}`, `#{pane_pid}`.
    pub fn pane(&self, format: &str) -> String {
        let out = self.run(&["display-message", "-p", "-t", &self.session, format]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Presses keys, as tmux names them (`Enter`, `Escape`, `Down`, `q`).
    pub fn send(&self, key: &str) {
        let out = self.run(&["send-keys", "-t", &self.session, key]);
        assert!(out.status.success(), "send-keys {key}");
    }

    /// Waits until the screen satisfies `pred`, and returns it.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.poll(DEADLINE, &pred).unwrap_or_else(|| {
            panic!(
                "timed out waiting for {what}; the screen:\n{}",
                self.capture()
            )
        })
    }

    /// The screen once it satisfies `pred`, or None if it did not within `limit`.
    pub fn poll(&self, limit: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let start = Instant::now();
        loop {
            let screen = self.capture();
            if pred(&screen) {
                return Some(screen);
            }
            if start.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Presses `key` until the screen satisfies `pred` (a key pressed while the dashboard is
    /// still starting can be lost), each wait with a deadline; returns the screen.
    pub fn press_until(&self, key: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        for _ in 0..10 {
            self.send(key);
            if let Some(screen) = self.poll(Duration::from_secs(2), &pred) {
                return screen;
            }
        }
        panic!("no {what} after {key}:\n{}", self.capture());
    }

    /// Presses `key`, then waits for the screen to show what it does.
    pub fn press(&self, key: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.send(key);
        self.wait_for(&format!("{what} after {key}"), pred)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::Instant::now()) % 1_000_000
}
