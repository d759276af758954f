//! `db import`: rows read from a Python Keystone database, already in keystone-rs's
//! shape (table and column names of our schema), to be written in one transaction.

/// One value of a row.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    /// A NULL in an integer column (PostgreSQL types its parameters).
    NullInt,
    Text(String),
    Int(i64),
    Bool(bool),
}

impl Cell {
    pub fn opt_text(v: Option<String>) -> Cell {
        v.map_or(Cell::Null, Cell::Text)
    }
}

/// The rows of one of our tables, in insertion order (parents before children).
#[derive(Clone, Debug)]
pub struct ImportTable {
    /// What the report calls the family ("domains", "users", ...).
    pub family: &'static str,
    /// Empty for a family written as columns of another one (user options, password
    /// history): its `rows` are then empty and only count what was carried.
    pub table: &'static str,
    pub columns: &'static [&'static str],
    pub rows: Vec<Vec<Cell>>,
    /// Why each source row that is not imported was left out.
    pub skipped: Vec<String>,
    /// Rows read from the source.
    pub read: usize,
}

/// What `db import` tells as it goes: the CLI draws a progress bar on a terminal;
/// `()` tells nobody.
pub trait ImportProgress: Sync {
    /// Reading the source has begun.
    fn reading(&self) {}
    /// Writing `rows` rows has begun.
    fn writing(&self, _rows: u64) {}
    /// One more row is written.
    fn wrote_row(&self) {}
    /// Everything is written (or nothing will be).
    fn finished(&self) {}
}

impl ImportProgress for () {}
