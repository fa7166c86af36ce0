-- The trunks, each as its `[[trunks]]` TOML table: the config file seeds this table at the first
-- start; after that it is the source of truth and admins change it at run time (the gateway
-- applies a change to admission at once). A definition is validated before it is stored.
CREATE TABLE IF NOT EXISTS trunks (
    name        TEXT NOT NULL PRIMARY KEY,
    position    INTEGER NOT NULL,
    definition  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
);
