//! Windows keeps a program's folder on PATH by listing it in the `Path`
//! variable of the registry's environment (the user's or the machine's), not
//! with links. This is the text half of that: adding and removing one folder
//! in a `;`-separated list, as Windows compares paths (case-insensitive, a
//! trailing backslash ignored). Plain text, so every OS's tests cover it; the
//! registry half lives in `windows.rs`.

/// Whose `Path` a folder is added to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathScope {
    /// `HKCU\Environment`: this user's.
    User,
    /// `HKLM\…\Session Manager\Environment`: every user's (an installer's,
    /// run elevated).
    Machine,
}

fn same(a: &str, b: &str) -> bool {
    let trim = |s: &str| s.trim().trim_end_matches(['\\', '/']).to_lowercase();
    trim(a) == trim(b)
}

/// Whether `list` names `dir`.
pub fn contains(list: &str, dir: &str) -> bool {
    list.split(';').any(|e| same(e, dir))
}

/// `list` with `dir` appended, or `None` when it is there already.
pub fn with(list: &str, dir: &str) -> Option<String> {
    if contains(list, dir) {
        return None;
    }
    let head = list.trim_end_matches(';');
    Some(if head.is_empty() {
        dir.to_string()
    } else {
        format!("{head};{dir}")
    })
}

/// `list` without `dir` (every copy of it), or `None` when it was not there.
/// The other entries keep their order and spelling, empty ones included.
pub fn without(list: &str, dir: &str) -> Option<String> {
    if !contains(list, dir) {
        return None;
    }
    Some(
        list.split(';')
            .filter(|e| !same(e, dir))
            .collect::<Vec<_>>()
            .join(";"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_is_appended_once() {
        let dir = r"C:\Program Files\Berth";
        assert_eq!(with("", dir).as_deref(), Some(dir));
        assert_eq!(
            with(r"C:\Windows;%USERPROFILE%\bin;", dir).as_deref(),
            Some(r"C:\Windows;%USERPROFILE%\bin;C:\Program Files\Berth")
        );
        // Windows' comparison: any case, a trailing backslash.
        assert_eq!(with(r"C:\Windows;c:\program files\berth\", dir), None);
    }

    #[test]
    fn removing_keeps_everything_else_as_it_was() {
        let dir = r"C:\Program Files\Berth";
        assert_eq!(
            without(r"C:\Windows;;C:\PROGRAM FILES\BERTH;%SystemRoot%\x", dir).as_deref(),
            Some(r"C:\Windows;;%SystemRoot%\x")
        );
        assert_eq!(without(dir, dir).as_deref(), Some(""));
        assert_eq!(without(r"C:\Windows", dir), None);
        // A folder inside it is another folder.
        assert_eq!(without(r"C:\Program Files\Berth\bin", dir), None);
    }
}
