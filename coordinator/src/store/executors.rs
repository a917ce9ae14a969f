//! Executors: registrations and request nonces.

use sqlx::Row;
use zkinfer_protocol::types::{ExecutorInfo, ExecutorRegistration};
use zkinfer_protocol::{ExecutorId, HexBytes, Wei};

use super::{db_executor, executor_id, model_id, Store};
use crate::error::{Error, Result};

impl Store {
    /// Registers (or updates) an executor: its HPKE key, price, hardware and models.
    pub async fn register_executor(&self, executor: &ExecutorId, info: &ExecutorRegistration, now_ms: i64) -> Result<()> {
        let address = db_executor(executor);
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO executors (address, hpke_public_key, price_wei, gpu, registered_ms, hpke_key_signature) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT(address) DO UPDATE SET hpke_public_key = $2, price_wei = $3, gpu = $4, registered_ms = $5, hpke_key_signature = $6",
        )
        .bind(&address)
        .bind(&info.hpke_public_key.0)
        .bind(info.price_wei.to_string())
        .bind(info.gpu)
        .bind(now_ms)
        .bind(&info.hpke_key_signature.0)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM executor_models WHERE executor = $1").bind(&address).execute(&mut *tx).await?;
        for m in &info.models {
            sqlx::query("INSERT INTO executor_models (executor, model_id) VALUES ($1, $2)")
                .bind(&address)
                .bind(m.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Registered executors, with their models.
    pub async fn executors(&self) -> Result<Vec<ExecutorInfo>> {
        let rows = sqlx::query(
            "SELECT address, hpke_public_key, price_wei, CAST(CASE WHEN gpu THEN 1 ELSE 0 END AS BIGINT), hpke_key_signature FROM executors ORDER BY address",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let address: String = r.try_get(0)?;
            let models: Vec<String> = sqlx::query_scalar("SELECT model_id FROM executor_models WHERE executor = $1 ORDER BY model_id")
                .bind(&address)
                .fetch_all(&self.pool)
                .await?;
            let price: String = r.try_get(2)?;
            out.push(ExecutorInfo {
                address: executor_id(&address)?,
                hpke_public_key: HexBytes(r.try_get(1)?),
                hpke_key_signature: HexBytes(r.try_get(4)?),
                stake_wei: Wei::default(),
                price_wei: price.parse().map_err(|_| Error::Internal(format!("stored price `{price}` of {address}")))?,
                gpu: r.try_get::<i64, _>(3)? != 0,
                models: models.iter().map(|m| model_id(m)).collect::<Result<_>>()?,
            });
        }
        Ok(out)
    }

    /// Accepts `nonce` for `executor` only if it is above every nonce it used before.
    pub async fn accept_nonce(&self, executor: &ExecutorId, nonce: u64) -> Result<()> {
        let n = i64::try_from(nonce).map_err(|_| Error::BadSignature("nonce too large".into()))?;
        let done = sqlx::query(
            "INSERT INTO executor_nonces (executor, last_nonce) VALUES ($1, $2) \
             ON CONFLICT(executor) DO UPDATE SET last_nonce = $2 WHERE executor_nonces.last_nonce < $2",
        )
        .bind(db_executor(executor))
        .bind(n)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::Replayed { executor: *executor, nonce });
        }
        Ok(())
    }
}
