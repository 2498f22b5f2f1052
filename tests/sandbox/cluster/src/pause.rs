//! The "pause every simulated controller" switch.

use tokio::sync::watch;

/// Shared switch; controllers call [`PauseSwitch::wait_running`] before every write.
#[derive(Debug, Clone)]
pub struct PauseSwitch {
    tx: std::sync::Arc<watch::Sender<bool>>,
}

impl Default for PauseSwitch {
    fn default() -> Self {
        Self {
            tx: std::sync::Arc::new(watch::channel(false).0),
        }
    }
}

impl PauseSwitch {
    /// Pauses (true) or resumes (false) every controller.
    pub fn set(&self, paused: bool) {
        self.tx.send_replace(paused);
    }

    /// Whether the controllers are paused now.
    pub fn is_paused(&self) -> bool {
        *self.tx.borrow()
    }

    /// Returns at once when running, otherwise when resumed.
    pub async fn wait_running(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in self, so wait_for cannot fail while we hold it.
        let _ = rx.wait_for(|paused| !*paused).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn wait_running_blocks_while_paused() {
        let sw = PauseSwitch::default();
        sw.set(true);
        assert!(sw.is_paused());
        let blocked = tokio::time::timeout(Duration::from_millis(20), sw.wait_running()).await;
        assert!(blocked.is_err(), "must wait while paused");
        let waiter = tokio::spawn({
            let sw = sw.clone();
            async move { sw.wait_running().await }
        });
        sw.set(false);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("resumed")
            .expect("joined");
        assert!(!sw.is_paused());
    }
}
