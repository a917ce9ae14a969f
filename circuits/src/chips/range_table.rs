//! A tagged range table: the pair `(t, v)` is present exactly when `0 <= v < 2^t`.
//!
//! One table serves range checks of several widths, so every check is a single lookup;
//! tag 0 holds only `v = 0`, which is also what disabled rows look up.

use halo2_proofs::circuit::{Layouter, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{ConstraintSystem, Error as PlonkError, TableColumn};

/// The table's columns and the widths it holds.
#[derive(Clone, Debug)]
pub struct RangeTableConfig {
    /// The bit-width tag.
    pub tag: TableColumn,
    /// The value.
    pub value: TableColumn,
    tags: Vec<u32>,
}

/// Rows the table needs for `tags` (tag 0 is always included).
pub fn table_rows(tags: &[u32]) -> usize {
    let mut t: Vec<u32> = tags.iter().copied().filter(|&t| t > 0).collect();
    t.sort_unstable();
    t.dedup();
    1 + t.iter().map(|&b| 1usize << b).sum::<usize>()
}

impl RangeTableConfig {
    /// Allocates the table columns.
    pub fn configure(meta: &mut ConstraintSystem<Fr>, tags: &[u32]) -> Self {
        let mut tags: Vec<u32> = tags.iter().copied().filter(|&t| t > 0).collect();
        tags.sort_unstable();
        tags.dedup();
        RangeTableConfig { tag: meta.lookup_table_column(), value: meta.lookup_table_column(), tags }
    }

    /// Whether a width is in the table.
    pub fn has(&self, bits: u32) -> bool {
        bits == 0 || self.tags.contains(&bits)
    }

    /// Fills the table.
    pub fn load(&self, layouter: &mut impl Layouter<Fr>) -> Result<(), PlonkError> {
        layouter.assign_table(
            || "range table",
            |mut table| {
                table.assign_cell(|| "tag", self.tag, 0, || Value::known(Fr::zero()))?;
                table.assign_cell(|| "value", self.value, 0, || Value::known(Fr::zero()))?;
                let mut row = 1;
                for &bits in &self.tags {
                    let tag = Fr::from(u64::from(bits));
                    for v in 0..(1u64 << bits) {
                        table.assign_cell(|| "tag", self.tag, row, || Value::known(tag))?;
                        table.assign_cell(|| "value", self.value, row, || Value::known(Fr::from(v)))?;
                        row += 1;
                    }
                }
                Ok(())
            },
        )
    }
}
