-- PostgreSQL mirror of migrations/sqlite/20261127000006_trunks.sql: the trunks, each as its
-- `[[trunks]]` TOML table; seeded from the config file at the first start.
CREATE TABLE IF NOT EXISTS trunks (
    name        text COLLATE "C" NOT NULL PRIMARY KEY,
    position    bigint NOT NULL,
    definition  text NOT NULL,
    updated_at  timestamptz NOT NULL,
    updated_by  text COLLATE "C" NOT NULL
);
