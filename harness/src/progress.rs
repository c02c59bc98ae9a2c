//! Progress of long runs on a terminal: a bar on stderr while models are checked, silent when
//! stderr is not a terminal (CI logs, pipes) or with `--quiet`, so output stays diffable.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `len` items, or nothing.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    pub fn new(len: usize, quiet: bool) -> Self {
        if quiet || !std::io::stderr().is_terminal() || len < 2 {
            return Self(None);
        }
        let bar = ProgressBar::new(len as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {wide_msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        Self(Some(bar))
    }

    /// Starting item `what`.
    pub fn start(&self, what: &str) {
        if let Some(b) = &self.0 {
            b.set_message(what.to_owned());
        }
    }

    pub fn done_one(&self) {
        if let Some(b) = &self.0 {
            b.inc(1);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_single_items_and_non_terminals_get_no_bar() {
        assert!(Progress::new(10, true).0.is_none());
        assert!(Progress::new(1, false).0.is_none());
        // Test output is captured, so stderr is not a terminal here.
        assert_eq!(Progress::new(10, false).0.is_some(), std::io::stderr().is_terminal());
    }
}
