//! A one-line progress spinner on standard error, only when it is a terminal.

use std::io::{IsTerminal, Write};
use std::time::Duration;

const FRAMES: &[char] = &['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

pub struct Spinner {
    enabled: bool,
    frame: usize,
    text: String,
    shown: bool,
    interval: tokio::time::Interval,
}

impl Spinner {
    pub fn new() -> Spinner {
        Spinner::with(std::io::stderr().is_terminal())
    }

    pub fn with(enabled: bool) -> Spinner {
        let mut interval = tokio::time::interval(Duration::from_millis(100));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        Spinner { enabled, frame: 0, text: String::new(), shown: false, interval }
    }

    /// Sets the text and redraws.
    pub fn show(&mut self, text: &str) {
        self.text = text.to_string();
        self.draw();
    }

    fn draw(&mut self) {
        if !self.enabled {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{} {}", FRAMES[self.frame % FRAMES.len()], self.text);
        let _ = err.flush();
        self.shown = true;
    }

    /// The next frame; never completes when the spinner is off.
    pub async fn tick(&mut self) {
        if !self.enabled {
            return std::future::pending().await;
        }
        self.interval.tick().await;
        self.frame += 1;
        self.draw();
    }

    /// Erases the line.
    pub fn clear(&mut self) {
        if self.shown {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
            self.shown = false;
        }
    }
}

impl Default for Spinner {
    fn default() -> Self {
        Spinner::new()
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.clear();
    }
}
