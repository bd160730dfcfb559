//! Which files of a manifest a run fetches: `--include`/`--exclude` globs on server
//! paths, `--records FILE` (record names → their files), and `--shard I/N` ([`crate::shard`], a stable
//! hash of the path). A glob without `/` matches a file's name in any directory
//! (`*.hea`); a glob with `/` matches the whole path, `*` within one component and `**`
//! across them (`records100/**`).

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use super::Entry;
use crate::error::{Error, Result};
use crate::shard::Shard;

/// A parsed selection.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    include: Option<(GlobSet, GlobSet)>,
    exclude: Option<(GlobSet, GlobSet)>,
    records: Option<Vec<String>>,
    shard: Option<Shard>,
}

fn build(globs: &[String]) -> Result<Option<(GlobSet, GlobSet)>> {
    if globs.is_empty() {
        return Ok(None);
    }
    let mut by_name = GlobSetBuilder::new();
    let mut by_path = GlobSetBuilder::new();
    for g in globs {
        let bad = |e: globset::Error| Error::Usage(format!("bad glob {g:?}: {e}"));
        if g.contains('/') {
            let glob = GlobBuilder::new(g.trim_start_matches('/'))
                .literal_separator(true)
                .build()
                .map_err(bad)?;
            by_path.add(glob);
        } else {
            by_name.add(Glob::new(g).map_err(bad)?);
        }
    }
    let err = |e: globset::Error| Error::Usage(e.to_string());
    Ok(Some((
        by_name.build().map_err(err)?,
        by_path.build().map_err(err)?,
    )))
}

fn matches(set: &(GlobSet, GlobSet), path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    set.0.is_match(name) || set.1.is_match(path)
}

impl Selection {
    /// Builds a selection; `records` is the text of a `--records` file (one record name
    /// per line, `#` comments allowed).
    pub fn new(
        include: &[String],
        exclude: &[String],
        records: Option<&str>,
        shard: Option<Shard>,
    ) -> Result<Selection> {
        let records = records.map(|t| {
            t.lines()
                .map(|l| l.trim().trim_end_matches(".hea").to_string())
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect::<Vec<_>>()
        });
        Ok(Selection {
            include: build(include)?,
            exclude: build(exclude)?,
            records,
            shard,
        })
    }

    /// True when nothing is filtered out.
    pub fn is_everything(&self) -> bool {
        self.include.is_none()
            && self.exclude.is_none()
            && self.records.is_none()
            && self.shard.is_none()
    }

    /// True when `path` is selected.
    pub fn selects(&self, path: &str) -> bool {
        if let Some(i) = &self.include
            && !matches(i, path)
        {
            return false;
        }
        if let Some(x) = &self.exclude
            && matches(x, path)
        {
            return false;
        }
        if let Some(recs) = &self.records
            && !recs.iter().any(|r| belongs_to_record(path, r))
        {
            return false;
        }
        self.shard.is_none_or(|s| s.contains(path))
    }

    /// The selected entries of a manifest, in manifest order.
    pub fn apply(&self, entries: &[Entry]) -> Vec<Entry> {
        entries
            .iter()
            .filter(|e| self.selects(&e.path))
            .cloned()
            .collect()
    }
}

/// True when `path` is one of record `rec`'s files: `rec` itself (an EDF record, named
/// with its extension), `rec.<ext>` (header, signals, annotations), `rec_<n>.<ext>`
/// segment files of a multi-segment record, or anything under `rec/` when the record
/// names a directory.
fn belongs_to_record(path: &str, rec: &str) -> bool {
    let rec = rec.trim_end_matches('/');
    let Some(rest) = path.strip_prefix(rec) else {
        return false;
    };
    rest.is_empty() || rest.starts_with('.') || rest.starts_with('/') || {
        // Segments of a multi-segment record: `<rec>_0001.hea`, and its layout header.
        rest.starts_with('_')
            && !rest[1..].contains('/')
            && rest[1..].split('.').next().is_some_and(|s| {
                !s.is_empty() && (s.chars().all(|c| c.is_ascii_digit()) || s == "layout")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(inc: &[&str], exc: &[&str]) -> Selection {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Selection::new(&s(inc), &s(exc), None, None).unwrap()
    }

    #[test]
    fn name_and_path_globs() {
        let s = sel(&["*.hea"], &[]);
        assert!(s.selects("records100/00000/00001_lr.hea"));
        assert!(!s.selects("records100/00000/00001_lr.dat"));
        let s = sel(&["records100/**"], &["*.dat"]);
        assert!(s.selects("records100/00000/00001_lr.hea"));
        assert!(!s.selects("records100/00000/00001_lr.dat"));
        assert!(!s.selects("records500/00000/00001_hr.hea"));
        let s = sel(&["records100/*"], &[]);
        assert!(!s.selects("records100/00000/x.hea"), "* must not cross /");
    }

    #[test]
    fn records_select_their_files() {
        let s = Selection::new(
            &[],
            &[],
            Some("100\n# c\nrecords100/00000/00001_lr\n3234460\n"),
            None,
        )
        .unwrap();
        for p in [
            "100.hea",
            "100.dat",
            "100.atr",
            "records100/00000/00001_lr.dat",
            "3234460.hea",
            "3234460_0001.dat",
            "3234460_layout.hea",
        ] {
            assert!(s.selects(p), "{p}");
        }
        for p in [
            "1000.hea",
            "101.hea",
            "records100/00000/00001_lr2.dat",
            "RECORDS",
        ] {
            assert!(!s.selects(p), "{p}");
        }
        // An EDF record is named with its extension: the file is the record (and
        // CHB-MIT's `<name>.edf.seizures` annotations go with it).
        let edf = Selection::new(&[], &[], Some("chb01/chb01_01.edf\n"), None).unwrap();
        assert!(edf.selects("chb01/chb01_01.edf"));
        assert!(edf.selects("chb01/chb01_01.edf.seizures"));
        assert!(!edf.selects("chb01/chb01_01.edfx"));
        assert!(!edf.selects("chb01/chb01_02.edf"));
    }

    #[test]
    fn shards_partition() {
        // Parsing and the hash itself are tested in `crate::shard`; here: the selection
        // puts every path in exactly one shard.
        let shards: Vec<Selection> = (0..3)
            .map(|index| Selection::new(&[], &[], None, Some(Shard { index, count: 3 })).unwrap())
            .collect();
        for i in 0..500 {
            let p = format!("p{i}/file.dat");
            assert_eq!(shards.iter().filter(|s| s.selects(&p)).count(), 1);
        }
    }
}
