//! A fake `/proc` and `/sys/fs/cgroup` in a temporary directory, for the
//! tests of [`CgroupFs`] and of the probes that read through it.

use std::path::PathBuf;

use super::CgroupFs;

/// A temporary directory holding `proc/` and `cgroup/`, laid out as `/proc`
/// and `/sys/fs/cgroup` are; removed when dropped.
pub(crate) struct FakeTree {
    dir: tempfile::TempDir,
}

impl FakeTree {
    /// Empty `proc/self/` and `cgroup/` directories.
    pub(crate) fn new() -> Self {
        let tree = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        tree.mkdir("proc/self");
        tree.mkdir("cgroup");
        tree
    }

    /// A reader of this tree, with nothing discovered yet.
    pub(crate) fn fs(&self) -> CgroupFs {
        CgroupFs::with_roots(self.path("proc"), self.path("cgroup"))
    }

    /// Where `path`, relative to the tree, is.
    pub(crate) fn path(&self, path: &str) -> PathBuf {
        self.dir.path().join(path)
    }

    /// Creates the directory `path` and its parents.
    pub(crate) fn mkdir(&self, path: &str) {
        std::fs::create_dir_all(self.path(path)).unwrap();
    }

    /// Writes `text` to the file `path`, creating its directories.
    pub(crate) fn write(&self, path: &str, text: &str) {
        let p = self.path(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// Writes every `(path, text)` of `files`, in order.
    pub(crate) fn files(&self, files: &[(&str, &str)]) {
        for (path, text) in files {
            self.write(path, text);
        }
    }

    /// Removes the file `path`.
    pub(crate) fn remove(&self, path: &str) {
        std::fs::remove_file(self.path(path)).unwrap();
    }
}
