//! Which records an input holds, following the contract: a directory's top-level
//! `RECORDS` file (entries naming directories, `p00/`, recurse into their own `RECORDS`,
//! as PhysioNet's hierarchical databases such as MIMIC-III waveforms do); without one,
//! every `*.hea` in the tree except the segment headers of multi-segment records found
//! there. `--records` globs (`*` within a component, `**` across) and `--shard` filter
//! the names afterwards.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::ConvertError;
use crate::shard::Shard;

/// One record found in the input.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RecordRef {
    /// Record name relative to the input root, `/`-separated, no extension.
    pub name: String,
}

/// The records of an input, sorted by name.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// Directory record names are relative to (the input directory, or the directory
    /// of a single record).
    pub root: PathBuf,
    /// Records, sorted by name, without duplicates.
    pub records: Vec<RecordRef>,
}

/// Lists the records of `input`: a dataset directory, or one record path with or
/// without `.hea`.
pub fn discover(input: &Path) -> Result<Discovered, ConvertError> {
    if input.is_dir() {
        let records_file = input.join("RECORDS");
        let names = if records_file.is_file() {
            let mut names = Vec::new();
            let mut seen = HashSet::new();
            read_records_file(input, "", &mut names, &mut seen)?;
            names
        } else {
            scan_headers(input)?
        };
        let set: BTreeSet<String> = names.into_iter().collect();
        return Ok(Discovered {
            root: input.to_path_buf(),
            records: set.into_iter().map(|name| RecordRef { name }).collect(),
        });
    }
    // A single record: `dir/100.hea` or `dir/100`.
    let stem_path = match input.extension() {
        Some(ext) if ext == "hea" => input.with_extension(""),
        _ => input.to_path_buf(),
    };
    let name = stem_path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| ConvertError::Discovery {
            path: input.to_path_buf(),
            reason: "not a directory or a record path".to_string(),
        })?
        .to_string();
    if !stem_path.with_extension("hea").is_file() && !input.is_file() {
        return Err(ConvertError::io(
            input,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such record or directory"),
        ));
    }
    let root = match stem_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok(Discovered {
        root,
        records: vec![RecordRef { name }],
    })
}

/// What `input` holds, for the "no records" error: `a RECORDS file listing no record`,
/// `an empty directory`, or the count of files by extension (`3 files: 2 *.txt, 1
/// *.csv`), looking at no more than 10,000 entries.
pub fn describe_contents(input: &Path) -> String {
    const LIMIT: usize = 10_000;
    if !input.is_dir() {
        return "not a directory or a record".to_string();
    }
    if input.join("RECORDS").is_file() {
        return "a RECORDS file listing no record".to_string();
    }
    let mut by_ext: std::collections::BTreeMap<String, usize> = Default::default();
    let (mut files, mut seen) = (0usize, 0usize);
    let mut stack = vec![input.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > LIMIT {
                break;
            }
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
                continue;
            }
            files += 1;
            let ext = path.extension().map_or_else(
                || "(no extension)".to_string(),
                |e| format!("*.{}", e.to_string_lossy()),
            );
            *by_ext.entry(ext).or_default() += 1;
        }
    }
    if files == 0 {
        return "an empty directory (no .hea or .edf file)".to_string();
    }
    let mut counts: Vec<(String, usize)> = by_ext.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let shown: Vec<String> = counts
        .iter()
        .take(5)
        .map(|(ext, n)| format!("{n} {ext}"))
        .collect();
    let more = if counts.len() > 5 { ", ..." } else { "" };
    format!(
        "{files} file(s), none a .hea or .edf record: {}{more}",
        shown.join(", ")
    )
}

/// Reads `root/prefix/RECORDS`, recursing into entries that end with `/`.
fn read_records_file(
    root: &Path,
    prefix: &str,
    out: &mut Vec<String>,
    seen: &mut HashSet<String>,
) -> Result<(), ConvertError> {
    if !seen.insert(prefix.to_string()) {
        return Ok(());
    }
    let path = root.join(prefix).join("RECORDS");
    let text = std::fs::read_to_string(&path).map_err(|e| ConvertError::io(&path, e))?;
    for line in text.lines() {
        let entry = line.trim();
        if entry.is_empty() || entry.starts_with('#') {
            continue;
        }
        // Entries come from a server: refuse any that would leave the dataset.
        let rel = crate::fsutil::enclosed_path(entry).map_err(|e| ConvertError::Discovery {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let rel = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let full = format!("{prefix}{rel}");
        if entry.ends_with('/') || root.join(&full).join("RECORDS").is_file() {
            read_records_file(root, &format!("{full}/"), out, seen)?;
        } else {
            out.push(full);
        }
    }
    Ok(())
}

/// Every `*.hea` under `root` except segment headers of multi-segment records.
fn scan_headers(root: &Path) -> Result<Vec<String>, ConvertError> {
    let mut headers: Vec<String> = Vec::new();
    let mut segments: HashSet<String> = HashSet::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel_dir) = stack.pop() {
        let dir = root.join(&rel_dir);
        let entries = std::fs::read_dir(&dir).map_err(|e| ConvertError::io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| ConvertError::io(&dir, e))?;
            let file_type = entry.file_type().map_err(|e| ConvertError::io(&dir, e))?;
            let Some(file_name) = entry.file_name().to_str().map(str::to_string) else {
                continue; // not UTF-8: cannot be a record name in the output
            };
            if file_type.is_dir() {
                stack.push(rel_dir.join(&file_name));
                continue;
            }
            let Some(stem) = file_name.strip_suffix(".hea") else {
                continue;
            };
            let dir_name = rel_components(&rel_dir);
            let name = join_name(&dir_name, stem);
            for seg in segment_names(&entry.path()) {
                segments.insert(join_name(&dir_name, &seg));
            }
            headers.push(name);
        }
    }
    headers.retain(|h| !segments.contains(h));
    headers.sort();
    Ok(headers)
}

fn rel_components(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn join_name(dir: &str, stem: &str) -> String {
    if dir.is_empty() {
        stem.to_string()
    } else {
        format!("{dir}/{stem}")
    }
}

/// Segment names listed by a multi-segment header (WFDB `header(5)`: the record line
/// reads `name/n_segments ...`, followed by one `segment_name length` line per segment;
/// `~` marks a gap). Discovery only needs these names, so this reads just the lines it
/// needs and treats anything unreadable as "not multi-segment"; the full header parser
/// reports real errors when the record is converted.
fn segment_names(hea: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read(hea) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&text);
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let Some(record_line) = lines.next() else {
        return Vec::new();
    };
    let first = record_line.split_whitespace().next().unwrap_or("");
    let Some((_, n_seg)) = first.split_once('/') else {
        return Vec::new();
    };
    let n_seg: usize = n_seg.parse().unwrap_or(0);
    lines
        .take(n_seg)
        .filter_map(|l| l.split_whitespace().next())
        .filter(|s| *s != "~")
        .map(str::to_string)
        .collect()
}

/// `--records` globs plus `--shard`, applied to record names.
#[derive(Debug)]
pub struct RecordFilter {
    globs: Option<GlobSet>,
    shard: Shard,
}

impl RecordFilter {
    /// Compiles `globs` with `*` confined to one `/`-separated component (`**` crosses).
    pub fn new(globs: &[String], shard: Shard) -> Result<Self, ConvertError> {
        let globs = if globs.is_empty() {
            None
        } else {
            let mut set = GlobSetBuilder::new();
            for g in globs {
                let glob = GlobBuilder::new(g)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| ConvertError::Usage(format!("--records {g:?}: {e}")))?;
                set.add(glob);
            }
            Some(
                set.build()
                    .map_err(|e| ConvertError::Usage(format!("--records: {e}")))?,
            )
        };
        Ok(RecordFilter { globs, shard })
    }

    /// True when `name` is selected.
    pub fn matches(&self, name: &str) -> bool {
        self.globs.as_ref().is_none_or(|g| g.is_match(name)) && self.shard.contains(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn names(d: &Discovered) -> Vec<&str> {
        d.records.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn records_files_recurse_into_directories() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "RECORDS", "p00/\np01/\n");
        write(dir.path(), "p00/RECORDS", "p000020/\n");
        write(dir.path(), "p00/p000020/RECORDS", "3544749\n3544749_0001\n");
        write(dir.path(), "p01/RECORDS", "r2\n\n");
        let d = discover(dir.path()).unwrap();
        assert_eq!(
            names(&d),
            ["p00/p000020/3544749", "p00/p000020/3544749_0001", "p01/r2"]
        );
    }

    #[test]
    fn records_file_with_nested_names_like_ptbxl() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "RECORDS",
            "records100/00000/00002_lr\nrecords100/00000/00001_lr\n",
        );
        let d = discover(dir.path()).unwrap();
        assert_eq!(
            names(&d),
            ["records100/00000/00001_lr", "records100/00000/00002_lr"]
        );
    }

    #[test]
    fn records_file_escaping_the_dataset_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "RECORDS", "../etc/passwd\n");
        assert!(matches!(
            discover(dir.path()),
            Err(ConvertError::Discovery { .. })
        ));
    }

    #[test]
    fn header_scan_skips_segments_of_multi_segment_records() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a/100.hea", "100 2 360 650000\n");
        write(
            dir.path(),
            "b/multi.hea",
            "# comment\nmulti/3 2 125 300\nmulti_layout 0\n~ 100\nmulti_0001 200\n",
        );
        write(dir.path(), "b/multi_layout.hea", "multi_layout 2 125 0\n");
        write(dir.path(), "b/multi_0001.hea", "multi_0001 2 125 200\n");
        write(dir.path(), "b/notes.txt", "x");
        let d = discover(dir.path()).unwrap();
        assert_eq!(names(&d), ["a/100", "b/multi"]);
    }

    #[test]
    fn single_record_paths_with_and_without_extension() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "x/100.hea", "100 1 360 10\n");
        for input in [dir.path().join("x/100.hea"), dir.path().join("x/100")] {
            let d = discover(&input).unwrap();
            assert_eq!(names(&d), ["100"]);
            assert_eq!(d.root, dir.path().join("x"));
        }
        assert!(discover(&dir.path().join("x/200")).is_err());
    }

    macro_rules! glob_cases {
        ($($name:ident: $globs:expr, $record:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                let globs: Vec<String> = $globs.iter().map(|s: &&str| s.to_string()).collect();
                let f = RecordFilter::new(&globs, Shard::ALL).unwrap();
                assert_eq!(f.matches($record), $want);
            }
        )*};
    }

    glob_cases! {
        glob_star_stays_in_component: ["records100/*"], "records100/00000/00001_lr" => false;
        glob_star_matches_component: ["records100/*/*_lr"], "records100/00000/00001_lr" => true;
        glob_double_star_crosses: ["records100/**"], "records100/00000/00001_lr" => true;
        glob_double_star_prefix: ["**/00001_lr"], "records100/00000/00001_lr" => true;
        glob_any_of_several: ["x", "1*"], "100" => true;
        glob_none_given_matches_all: [] as [&str; 0], "anything/at/all" => true;
    }

    #[test]
    fn shards_partition_records() {
        let names: Vec<String> = (0..200).map(|i| format!("r{i}")).collect();
        let filters: Vec<RecordFilter> = (0..3)
            .map(|index| RecordFilter::new(&[], Shard { index, count: 3 }).unwrap())
            .collect();
        for n in &names {
            assert_eq!(filters.iter().filter(|f| f.matches(n)).count(), 1);
        }
    }

    #[test]
    fn bad_glob_is_a_usage_error() {
        let e = RecordFilter::new(&["a[".to_string()], Shard::ALL).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::EXIT_USAGE);
    }
}
