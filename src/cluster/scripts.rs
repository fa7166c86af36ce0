//! The Lua scripts that change the shared state, each atomic on the Redis server. Loaded once
//! (`SCRIPT LOAD` when a node joins); every call is `EVALSHA`, and a server that lost its script
//! cache (a restart) gets the script again transparently (redis-rs `Script`: `NOSCRIPT` → load,
//! retry).

use redis::Script;

/// One `Script` each (the SHA-1 computed once).
pub(super) struct Scripts {
    pub admit: Script,
    pub release: Script,
    pub heartbeat: Script,
    pub sync: Script,
    pub reclaim: Script,
    pub load: Script,
    pub leave: Script,
    pub live: Script,
}

impl Scripts {
    pub(super) fn new() -> Scripts {
        Scripts {
            admit: Script::new(include_str!("lua/admit.lua")),
            release: Script::new(include_str!("lua/release.lua")),
            heartbeat: Script::new(include_str!("lua/heartbeat.lua")),
            sync: Script::new(include_str!("lua/sync.lua")),
            reclaim: Script::new(include_str!("lua/reclaim.lua")),
            load: Script::new(include_str!("lua/load.lua")),
            leave: Script::new(include_str!("lua/leave.lua")),
            live: Script::new(include_str!("lua/live.lua")),
        }
    }

    pub(super) fn all(&self) -> [&Script; 8] {
        [
            &self.admit,
            &self.release,
            &self.heartbeat,
            &self.sync,
            &self.reclaim,
            &self.load,
            &self.leave,
            &self.live,
        ]
    }
}
