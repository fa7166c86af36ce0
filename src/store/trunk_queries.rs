//! Trunk definitions (`trunks`): each trunk's TOML table, in the order they were created. The
//! store keeps the text; parsing and validation are the config's.

use chrono::{DateTime, Utc};

use super::{Columns, Op, Store, StoreError};

/// A stored trunk definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkDefinition {
    pub name: String,
    /// The trunk's TOML table.
    pub definition: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

impl Store {
    /// Stores `definitions` (name, TOML) when the table is empty, in one transaction; returns
    /// whether it did (false: the database already holds the trunks).
    pub async fn seed_trunks(
        &self,
        definitions: &[(String, String)],
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        dispatch!(self, seed_trunks(definitions, by, at))
    }

    /// Every trunk, in creation order.
    pub async fn trunk_definitions(&self) -> Result<Vec<TrunkDefinition>, StoreError> {
        dispatch!(self, trunk_definitions())
    }

    /// Creates or replaces one trunk's definition (a new trunk goes last).
    pub async fn put_trunk(
        &self,
        name: &str,
        definition: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        dispatch!(self, put_trunk(name, definition, by, at))
    }

    /// Removes a trunk; false when there was none of that name.
    pub async fn delete_trunk(&self, name: &str) -> Result<bool, StoreError> {
        dispatch!(self, delete_trunk(name))
    }
}

per_backend! {
    pub(super) async fn seed_trunks(
        pool: &DbPool,
        definitions: &[(String, String)],
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = Dialect::begin_write(pool).await.op("begin trunks seeding")?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM trunks")
            .fetch_one(&mut *tx)
            .await
            .op("count trunks")?;
        if n > 0 {
            return Ok(false);
        }
        for (i, (name, definition)) in definitions.iter().enumerate() {
            sqlx::query(
                "INSERT INTO trunks (name, position, definition, updated_at, updated_by) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(name)
            .bind(i as i64)
            .bind(definition)
            .bind(Dialect::time(at))
            .bind(by)
            .execute(&mut *tx)
            .await
            .op_on("seed trunk", name)?;
        }
        tx.commit().await.op("commit trunks seeding")?;
        Ok(true)
    }

    pub(super) async fn trunk_definitions(pool: &DbPool) -> Result<Vec<TrunkDefinition>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, definition, updated_at, updated_by FROM trunks ORDER BY position, name",
        )
        .fetch_all(pool)
        .await
        .op("read trunks")?;
        rows.iter()
            .map(|row| {
                let row = Columns::new(row, "read trunk row");
                let name: String = row.try_get("name")?;
                Ok(TrunkDefinition {
                    definition: row.try_get("definition")?,
                    updated_by: row.try_get("updated_by")?,
                    updated_at: row.time("updated_at", &format!("trunk {name}"))?,
                    name,
                })
            })
            .collect()
    }

    pub(super) async fn put_trunk(
        pool: &DbPool,
        name: &str,
        definition: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO trunks (name, position, definition, updated_at, updated_by) \
             VALUES ($1, (SELECT COALESCE(MAX(position), -1) + 1 FROM trunks), $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, \
             updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(name)
        .bind(definition)
        .bind(Dialect::time(at))
        .bind(by)
        .execute(pool)
        .await
        .op_on("store trunk", name)?;
        Ok(())
    }

    pub(super) async fn delete_trunk(pool: &DbPool, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM trunks WHERE name = $1")
            .bind(name)
            .execute(pool)
            .await
            .op_on("delete trunk", name)?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        crate::model::sample_cdr("x").attempt.invite_at
    }

    #[tokio::test]
    async fn seeded_once_then_changed_in_place() {
        crate::store::testing::on_each_backend(|store| async move {
            seeded_once_then_changed(store).await
        })
        .await;
    }

    async fn seeded_once_then_changed(store: Store) {
        let defs = vec![
            ("b".to_string(), "name = \"b\"".to_string()),
            ("a".to_string(), "name = \"a\"".to_string()),
        ];
        assert!(store.seed_trunks(&defs, "config", at()).await.unwrap());
        assert!(!store.seed_trunks(&defs[..1], "config", at()).await.unwrap());
        store
            .put_trunk("a", "name = \"a\"\n# v2", "alice", at())
            .await
            .unwrap();
        store
            .put_trunk("c", "name = \"c\"", "alice", at())
            .await
            .unwrap();
        let got = store.trunk_definitions().await.unwrap();
        let names: Vec<&str> = got.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["b", "a", "c"], "creation order kept");
        assert_eq!(got[1].definition, "name = \"a\"\n# v2");
        assert_eq!(got[1].updated_by, "alice");
        assert!(store.delete_trunk("b").await.unwrap());
        assert!(!store.delete_trunk("b").await.unwrap());
        assert_eq!(store.trunk_definitions().await.unwrap().len(), 2);
    }
}
