//! `[runtime]`: the async runtime's threads.

use serde::Deserialize;

use super::ConfigError;

/// More than this is a typo: the runtime's work is signalling and hand-offs, not computation.
const MAX_WORKER_THREADS: usize = 256;

/// `[runtime]`: how many threads run the async tasks (signalling, calls, the API, the writers'
/// async halves). The relay threads (one per core), the recorder threads and the database's
/// worker threads are threads of their own beside these.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// 0 (the default): one per core. Fewer leave the relay, recorder and database threads,
    /// which every call also wakes, a core of their own, and tokio then wakes idle workers less
    /// often: on two cores one worker carried the same calls with 5–16 % less CPU a call, but
    /// past capacity all signalling (the refusals included) had one core, and at four times the
    /// capacity it answered 50 % of it against 106 % with two (bench/README.md, session 15).
    /// Degrading gracefully under overload comes first, hence the default.
    #[serde(default)]
    pub worker_threads: usize,
}

impl RuntimeConfig {
    /// The number of runtime threads to start on a machine with `cores` cores.
    pub fn worker_threads_for(&self, cores: usize) -> usize {
        match self.worker_threads {
            0 => cores.max(1),
            n => n,
        }
    }

    /// `worker_threads_for` on this machine.
    pub fn worker_threads(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.worker_threads_for(cores)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.worker_threads > MAX_WORKER_THREADS {
            return Err(ConfigError::invalid(
                "runtime.worker_threads",
                format!("must be 0 (one per core) to {MAX_WORKER_THREADS}"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_one_per_core_and_never_none() {
        let auto = RuntimeConfig::default();
        let threads: Vec<usize> = [1, 2, 3, 4, 8, 64]
            .iter()
            .map(|&c| auto.worker_threads_for(c))
            .collect();
        assert_eq!(threads, [1, 2, 3, 4, 8, 64]);
        assert_eq!(auto.worker_threads_for(0), 1);
        let fixed = RuntimeConfig { worker_threads: 3 };
        assert_eq!(fixed.worker_threads_for(2), 3);
    }

    #[test]
    fn a_typo_sized_count_is_refused_by_key() {
        let err = RuntimeConfig {
            worker_threads: 100_000,
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.contains("runtime.worker_threads"), "{err}");
        assert!(RuntimeConfig {
            worker_threads: 256
        }
        .validate()
        .is_ok());
    }
}
