//! Where the demo writes: indicatif bars and lines on a TTY, plain lines otherwise.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Demo output; cheap to clone.
#[derive(Clone, Debug)]
pub struct Output {
    bars: Option<MultiProgress>,
    quiet: bool,
}

impl Output {
    /// Bars when stdout is a terminal; plain lines (no colours, no escapes) when it is not.
    pub fn auto() -> Self {
        if std::io::stdout().is_terminal() {
            Self {
                bars: Some(MultiProgress::with_draw_target(ProgressDrawTarget::stdout())),
                quiet: false,
            }
        } else {
            Self::plain()
        }
    }

    /// Plain lines on stdout.
    pub fn plain() -> Self {
        Self {
            bars: None,
            quiet: false,
        }
    }

    /// Nothing at all (tests).
    pub fn quiet() -> Self {
        Self {
            bars: None,
            quiet: true,
        }
    }

    /// Prints a line (above the bars when there are any).
    pub fn line(&self, text: impl AsRef<str>) {
        if self.quiet {
            return;
        }
        match &self.bars {
            Some(mp) => {
                if mp.println(text.as_ref()).is_err() {
                    println!("{}", text.as_ref());
                }
            }
            None => println!("{}", text.as_ref()),
        }
    }

    /// A bar of `len` steps labelled `label` (hidden without a TTY).
    pub fn bar(&self, label: &str, len: u64) -> ProgressBar {
        let Some(mp) = &self.bars else {
            return ProgressBar::hidden();
        };
        let style =
            ProgressStyle::with_template("{prefix:<14.bold} [{bar:20.cyan/blue}] {pos}/{len} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        let bar = mp.add(ProgressBar::new(len));
        bar.set_style(style);
        bar.set_prefix(label.chars().take(14).collect::<String>());
        bar
    }
}
