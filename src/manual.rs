//! `tandem --man`: the manual page, in roff. The options come from the command line's
//! own definition (`cli`), with their long help, aliases, defaults and values; the
//! other sections are written here, as plain text that [`prose`] turns into roff.

use std::io::{self, Write};

use clap::{Arg, Command};

/// The hand-written sections after OPTIONS, in order: (title, text). In the text a blank
/// line separates paragraphs, a line starting `- ` is a bullet item (continued by
/// indented lines), a line starting `: ` is a tagged item's tag (the lines after it its
/// body), and a line indented by four spaces is kept as is (examples).
const SECTIONS: &[(&str, &str)] = &[
    (
        "IGNORE RULES",
        "\
A .syncignore file in SOURCE's root or any subdirectory applies to its own directory and \
everything below it, with gitignore syntax and semantics: comments (#), blank lines, ! \
negation, a trailing / for directories only, a leading or middle / anchoring the pattern to \
the file's directory, *, ?, [...] classes (with ! or ^ negation, ranges and POSIX classes \
such as [[:digit:]]), ** in every position, backslash escapes, and trailing spaces ignored \
unless escaped.

- Precedence, as in git: within one file the last matching line wins; a deeper .syncignore \
overrides a shallower one; command-line rules override every .syncignore. Among those, from \
weakest to strongest: --files-from (everything not listed is excluded), the --exclude-from \
files in order, then the --exclude and --include patterns in the order given, the last one \
that matches deciding (--include PATTERN is --exclude !PATTERN).
- A file cannot be re-included when its parent directory is excluded: an excluded \
directory is not even read.
- Excluded entries are neither copied nor deleted: what DEST already has under an excluded \
path is left alone (as rsync does), unless --delete-excluded.
- .syncignore files are mirrored like any other file unless a pattern excludes them.
- A .syncignore that cannot be read makes its directory unjudgeable: it is left alone on \
both sides and the error reported (exit status 3).
- A malformed pattern (an unclosed [, an unknown [:class:], a trailing lone backslash) is an \
error naming the file and line, exit status 2, nothing changed. In watch mode a broken file \
is reported and the last good rules stay.
- --explain-ignored lists each excluded SOURCE entry and each protected DEST entry with the \
rule (file, line, pattern) that excluded it.
- In watch mode, editing any .syncignore reloads the rules and rescans the directory it \
governs.",
    ),
    (
        "WATCH MODE AND STRATEGIES",
        "\
tandem --watch first mirrors SOURCE into DEST exactly as a one-shot run does (guards \
included), then keeps DEST in step until SIGINT or SIGTERM. It says at start which \
strategy it uses and why (a stderr line, or a strategy JSON event):

: native
notify's recommended watcher (inotify on Linux), one watch per directory.
: poll
a parallel rescan of SOURCE every interval (--poll, default 2s).
: mixed
native events for the local parts of SOURCE, polling for the subtrees where events cannot \
be had (a network or FUSE file system mounted inside SOURCE, or directories the inotify \
watch limit left unwatched).

--poll forces polling. Otherwise tandem reads SOURCE's file-system type and polls when it is \
a network or cluster file system (NFS, SMB/CIFS, 9p, Ceph, AFS, Lustre, GlusterFS, ...) or \
any FUSE file system (sshfs, bindfs, rclone mount, ...), where changes made on the server or \
by other clients raise no events. A SOURCE on another host (host:path) is always polled, \
through the same SFTP engine. When the inotify watch limit runs out, only the unwatched \
subtrees are polled, and tandem names the sysctl to raise \
(fs.inotify.max_user_watches).

- The strategies only say which paths may have changed: tandem re-reads those SOURCE \
directories, diffs them against the snapshot it holds of DEST and applies the result with \
the same planner and copier as a one-shot run.
- A queue overflow, a watcher error or a directory replaced by another one leads to a \
rescan of the affected tree; missed events cannot go unnoticed.
- An entry that vanished from one place and appeared in another within one cycle, with the \
same inode, kind, size and mtime, is renamed in DEST instead of copied again.
- --debounce: a burst is synced once SOURCE has been quiet that long; a file written \
without pause is still synced at least every max(2s, --debounce).
- DEST is watched too when it is on a local file system (unless --no-watch-dest): what \
others change there is repaired within about a second. Every --verify-every (default 1h; \
SIGHUP asks for one at once) both trees are compared in full and every difference repaired.
- Failed entries are verified again after a back-off of 1s, doubling up to 60s.
- A lost connection to a remote SOURCE or DEST pauses syncing; tandem connects again with \
the same back-off, then verifies all of DEST.
- An empty SOURCE while DEST holds entries skips the cycle (unless --allow-empty-source); \
--max-delete holds deletions back instead of stopping.
- After the first sync DEST is never created again: when SOURCE's or DEST's root is gone, \
replaced or on another file system (an unmounted disk), cycles pause with a notice and \
resume with a full verification once it is back.
- SIGINT/SIGTERM: the file being copied is abandoned (its temporary removed), the summary \
printed, exit status 0, also when the signal comes twice within a second as timeout(1) \
sends it; a further signal after that ends tandem at once with status 130.",
    ),
    (
        "WHAT IS MIRRORED",
        "\
- Regular files: content, permission bits (set-id and sticky bits included) and mtime to \
the nanosecond. A file is copied when it is new, or its size or mtime differs \
(--modify-window), or with --checksum when its content differs. Sparse files keep their \
holes. On file systems that keep coarser times (FAT 2s, exFAT 10ms, sshfs 1s, SMB/NTFS \
100ns) the mtime cut down to that precision counts as equal.
- Directories: created, and given their mode and mtime after their contents are done; a \
read-only directory in DEST that tandem owns is opened up for the update and restored. \
DEST's root gets SOURCE root's mode and mtime. A SOURCE directory that cannot be read is \
reported and created in DEST empty and usable by its owner (u+rwx), so later runs do not \
fail on it in DEST; its contents and real mode follow once it can be read.
- Symlinks: copied as symlinks with their target text as is, never followed; re-pointed \
atomically; their own mtime is mirrored.
- Owner and group: mirrored when tandem runs as root, left as the running user otherwise.
- Special files (FIFOs, sockets, devices) are skipped with a warning and never opened.
- What is deleted or overwritten in DEST is gone, unless --backup-dir keeps it there \
(moved by rename, overwritten files hard-linked first so their replacement stays atomic). \
For a DEST over SFTP, DIR must be inside DEST; the server's hardlink@openssh.com keeps the \
replacement atomic, and without it the old file is renamed aside first.
- Hard links are copied as separate files, unless -H: then files that share an inode in \
SOURCE share one in DEST (the first name in path order is copied, the others are linked to \
it by a pass after the plan, under a temporary name renamed into place; DEST copies where \
SOURCE has links become links; names that left a group are copied apart; in watch mode \
the groups are found again after each cycle that changed something).
- Extended attributes with -X (user.*; as root also trusted.* and security.*) and POSIX \
ACLs with -A (system.posix_acl_access, system.posix_acl_default): compared and copied with \
every file, directory and symlink (where the file system allows); a change in them alone \
is an attribute fix; a DEST without xattr support gives one warning for the run. Access \
times are not mirrored.
- -H, -X and -A need SOURCE and DEST on this machine: SFTP carries no xattrs, ACLs or \
inode numbers.
- Type changes: the old entry is removed and the new one created, even with --no-delete; \
these removals count toward --max-delete.
- Hidden files are ordinary files: nothing is skipped by name.

An S3 bucket as DEST: s3://bucket/prefix (AWS S3 or an S3-compatible server; --s3-endpoint \
URL, or the AWS environment: see ENVIRONMENT). A file is the object prefix/path with its \
mtime in the user metadata mtime (X-Amz-Meta-Mtime) as rclone writes it, and its mode in mode (octal); each \
directory tandem makes is a zero-byte marker path/; a symlink is an object holding its \
target. Names that are not UTF-8, or keys longer than 1024 bytes, are reported and left \
out. A no-op run lists the bucket and sends no request per object: what listings do not \
return (the mtime) is kept in a cache under $XDG_CACHE_HOME/tandem/s3, trusted while the \
listing shows the same ETag, size and LastModified. Files from 16 MiB go up as multipart \
uploads, completed only when whole; uploads left by a killed run are aborted by the next \
one. In watch mode a rename is a server-side copy and delete.",
    ),
    (
        "WHAT TANDEM PROMISES",
        "\
- A file appears in DEST under its real name only when complete: it is written as \
.tandem-PID-N.tmp in its destination directory, given its mode and mtime, then renamed \
over the final name. A crash can leave such temporaries, never a torn file; the next run \
removes them.
- A source file that changes while it is copied is copied again (up to 3 times), then \
reported as an error; it is never left torn.
- Nothing is written outside DEST: every operation is relative to an open directory with \
O_NOFOLLOW, so a symlink in DEST is replaced, never followed. SOURCE is only read, and its \
symlinks are never read through.
- One bad entry (permission denied, vanished file, disk full) never stops the run: it is \
reported with its path, the rest is synced, and the exit status is 3.
- Deletions run children before parents; the safety guards refuse before anything is \
changed.
- A second run over an unchanged tree changes nothing in DEST.",
    ),
    (
        "OUTPUT",
        "\
With -v (and with --dry-run) each change is itemized on stdout, one line each:

    mkdir docs/
    copy docs/guide.txt (1234 bytes)
    symlink latest -> docs/guide.txt
    meta bin/run.sh
    rename old/name.txt -> new/name.txt
    hardlink docs/copy.txt => docs/guide.txt
    delete old/notes.txt
    exclude build (in SOURCE: .syncignore:3: build/)
    exclude cache/old.log (in DEST: .syncignore:2: *.log)

Lines come in path order, as a dry run lists the plan, whatever order the parallel \
workers finish in (at most 10,000 lines wait for a slow entry earlier in the tree; past \
that they are printed as they come). meta means only attributes changed; meta . is \
DEST's root. rename appears in watch mode; hardlink lines with -H (after the plan's \
lines: the link pass runs once the copies are done); \
exclude lines with --explain-ignored, saying which side each is about (a SOURCE entry not \
synced, or a DEST entry left alone). \
Paths are relative to DEST; names that are not valid UTF-8 are shown with U+FFFD in place \
of the invalid bytes. A one-shot run ends with a one-line summary on stderr (unless -q); \
in watch mode each cycle that changed something prints one, and the totals when tandem \
stops. When stderr is not a terminal, watch mode's stderr lines start with a local RFC 3339 \
timestamp.",
    ),
    (
        "JSON EVENTS",
        "\
With --json every line on stdout is one JSON object with an event field and a time field \
(local RFC 3339 with milliseconds). Paths are relative to DEST (or SOURCE for source-side \
errors), as UTF-8 with invalid bytes replaced by U+FFFD. Human messages and progress go to \
stderr.

: copy
path, bytes
: mkdir, meta, delete
path
: symlink
path, target
: rename
path (the new name), from (watch mode)
: hardlink
path, target; with -H: path made another name of target
: excluded
path, side (source or dest), rule (file:line: pattern); with --explain-ignored
: warning, error
path, side, message; path and side are empty for errors that stop the run
: progress
phase, scanned or files_done, files_total, bytes_done, bytes_total, bytes_per_sec, \
eta_secs; only with --progress lines
: strategy
name (native, poll or mixed), reason; watch mode
: notice
message; watch mode: fallbacks, skipped or paused cycles, SIGHUP, DEST watching
: refused
deletes, max_delete, examples; watch mode: deletions held back by --max-delete
: cycle
cycle, verify, scanned, copied, bytes, mkdir, symlink, meta, deleted, renamed, \
hardlinked, unchanged, \
errors, elapsed_ms, bytes_per_sec; watch mode, after each sync cycle
: summary
scanned, copied, bytes, mkdir, symlink, meta, deleted, renamed, hardlinked, unchanged, \
errors, warnings, elapsed_ms, bytes_per_sec, dry_run, exit_code (watch mode adds cycles); always \
the last line once the command line could be read",
    ),
    (
        "EXIT STATUS",
        "\
: 0
DEST is in sync with SOURCE (or, with --dry-run, the plan was printed); watch mode: \
stopped by SIGINT or SIGTERM.
: 1
Fatal error: the run could not go on (DEST could not be created or read, a one-shot run \
interrupted by a signal).
: 2
Usage or configuration error: a bad flag or value, a missing SOURCE, SOURCE not a \
directory, SOURCE and DEST the same or one inside the other, an ignore pattern that cannot \
be parsed. The error is one line on stderr naming the flag, the value and what is allowed.
: 3
Finished, but some entries failed; each was reported with its path.
: 4
Refused by a safety guard: an empty SOURCE (nothing was changed), or --max-delete (no \
deletion was run; a one-shot run between two local trees synced everything else, one with \
a remote side or -H changed nothing). In watch mode --max-delete holds deletions back \
instead.
: 130
A further SIGINT or SIGTERM more than a second after the first, while watch mode is \
stopping: it ends at once.",
    ),
    (
        "ENVIRONMENT",
        "\
: NO_COLOR
When set and not empty, no colour is used. Colour (red error:, yellow warning:) is only \
ever used when stderr is a terminal.
: NOTIFY_SOCKET
Set by systemd for a Type=notify service: tandem --config sends READY=1 once every \
mirror's first sync has finished (or failed and is being retried), STATUS= with a one-line \
summary, RELOADING=1 and MONOTONIC_USEC= on SIGHUP (then READY=1), STOPPING=1 on SIGTERM.
: WATCHDOG_USEC
Set by systemd's WatchdogSec: tandem --config sends WATCHDOG=1 every half of it.
: JOURNAL_STREAM
When it names stderr (systemd's journal), each line starts with its syslog priority (<3> \
errors, <4> warnings, <6> the rest, <7> debug) and carries no timestamp of its own.
: XDG_RUNTIME_DIR
tandem --config keeps its status in $XDG_RUNTIME_DIR/tandem/status.json (as root: \
/run/tandem/status.json) unless --status-file says otherwise; tandem status reads it.
: AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE
Where an s3:// DEST is and who tandem is there, read as the AWS SDK reads them (with \
~/.aws/config and ~/.aws/credentials). An endpoint that is not AWS's is addressed \
path-style.
: AWS_CA_BUNDLE
For an https:// S3 endpoint, the PEM file whose certificates are trusted instead of the \
system's (as the AWS CLI does). Not read for an http:// endpoint.
: AWS_MAX_ATTEMPTS, AWS_RETRY_MODE
Attempts per S3 request (default 10) and the SDK's retry mode (standard, the default, or \
adaptive). Throttling (HTTP 503 or 429) is retried with exponential back-off up to 20 s; \
a request refused at every attempt is an error for that entry.
: XDG_CACHE_HOME
Where the metadata cache of s3:// DESTs is kept (default ~/.cache).",
    ),
    (
        "EXAMPLES",
        "\
Mirror once, itemizing what changes:

    tandem -v ~/photos /mnt/backup/photos

See what a run would do, and why entries are excluded:

    tandem --dry-run -v --explain-ignored src/ /srv/mirror/

Keep a mirror in step, syncing bursts of changes every 15 seconds at most, for a log:

    tandem --watch --debounce 15s --progress lines src /srv/mirror

Mirror a network share, polling every 30 seconds, never deleting more than 100 entries \
at a time:

    tandem --poll 30s --max-delete 100 /mnt/nas/projects /data/projects

As rsync -aHAX: hard links, extended attributes and ACLs too (-a alone, as with rsync, \
does not include them):

    tandem -aHAX /srv/data /mnt/backup/data

Run every mirror of a config file as one service, reload it after editing, ask what each \
mirror is doing (a [[sync]] table per mirror with source, dest and options under their long \
names; SIGHUP reloads: added mirrors start, removed ones stop, changed ones restart, \
unchanged ones keep running; a file that does not load keeps the running configuration):

    tandem --config /etc/tandem.toml
    systemctl reload tandem
    tandem status

Mirror into a prefix of a bucket on a local S3-compatible server:

    tandem --s3-endpoint http://127.0.0.1:8333 ~/photos s3://backup/photos

Read the events from a script:

    tandem --json src dst | jq -c 'select(.event == \"copy\")'",
    ),
    ("SEE ALSO", "rsync(1), lsyncd(1), rclone(1), gitignore(5), inotify(7), timeout(1)"),
];

const DESCRIPTION: &str = "\
tandem SOURCE DEST mirrors the contents of SOURCE into DEST once and exits, like rsync -a \
--delete SOURCE/ DEST/ (a trailing slash on either path makes no difference): files, \
directories and symlinks (as links, never followed), with their permission bits and \
modification times, and nothing else. DEST is created (with any missing parents) if it \
does not exist; SOURCE must be an existing directory. SOURCE and DEST must differ, and \
neither may be inside the other (checked after resolving symlinks and ..).

tandem --watch SOURCE DEST mirrors, then keeps DEST in step until stopped: with native \
events on local disks, and a parallel polling scanner on network shares (NFS, SMB, sshfs \
and other FUSE mounts), where native events never arrive.

A flag given twice takes its last value (--exclude, --include and --exclude-from add up).";

/// Writes the whole page.
pub fn render(cmd: Command, out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = cmd;
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(out)?;
    let mut s = String::new();
    s.push_str(".SH NAME\n");
    s.push_str(&line(&format!(
        "tandem \\- {}",
        esc(&cmd.get_about().map(|a| a.to_string()).unwrap_or_default())
    )));
    s.push_str(".SH SYNOPSIS\n");
    for line in [
        r"\fBtandem\fR [\fIOPTIONS\fR] \fISOURCE\fR \fIDEST\fR",
        r"\fBtandem \-\-watch\fR [\fIOPTIONS\fR] \fISOURCE\fR \fIDEST\fR",
        r"\fBtandem \-\-completions\fR \fISHELL\fR | \fB\-\-man\fR",
    ] {
        s.push_str(line);
        s.push_str("\n.br\n");
    }
    s.push_str(".SH DESCRIPTION\n");
    s.push_str(&prose(DESCRIPTION));
    s.push_str(&options(&cmd));
    for (title, text) in SECTIONS {
        s.push_str(&format!(".SH {}\n", quote_title(title)));
        s.push_str(&prose(text));
    }
    out.write_all(s.as_bytes())
}

/// The OPTIONS section: one `.SS` per help heading, in the order of `--help`.
fn options(cmd: &Command) -> String {
    let mut s = String::from(".SH OPTIONS\n");
    for pos in cmd.get_positionals() {
        let name = pos.get_value_names().and_then(|n| n.first()).map(|n| n.to_string());
        s.push_str(&format!(".TP\n\\fI{}\\fR\n", esc(&name.unwrap_or_else(|| pos.get_id().to_string()))));
        s.push_str(&body(pos));
    }
    let mut headings: Vec<Option<&str>> = Vec::new();
    for a in cmd.get_arguments().filter(|a| !a.is_positional() && !a.is_hide_set()) {
        if !headings.contains(&a.get_help_heading()) {
            headings.push(a.get_help_heading());
        }
    }
    for heading in headings {
        s.push_str(&format!(".SS \"{}\"\n", esc(heading.unwrap_or("Help"))));
        for a in cmd
            .get_arguments()
            .filter(|a| !a.is_positional() && !a.is_hide_set() && a.get_help_heading() == heading)
        {
            s.push_str(".TP\n");
            s.push_str(&header(a));
            s.push('\n');
            s.push_str(&body(a));
        }
    }
    s
}

/// `\-x, \-\-one\-file\-system`, `\-\-scan\-threads \fIN\fR, \-\-threads \fIN\fR`.
fn header(a: &Arg) -> String {
    let value = match a.get_action().takes_values() {
        true => {
            let name = a.get_value_names().and_then(|n| n.first()).map(|n| n.to_string()).unwrap_or_default();
            let optional = a.get_num_args().is_some_and(|r| r.min_values() == 0);
            match optional {
                true => format!(" [\\fI{}\\fR]", esc(&name)),
                false => format!(" \\fI{}\\fR", esc(&name)),
            }
        }
        false => String::new(),
    };
    let mut names: Vec<String> = Vec::new();
    if let Some(c) = a.get_short() {
        names.push(format!("\\fB\\-{}\\fR", esc(&c.to_string())));
    }
    if let Some(l) = a.get_long() {
        names.push(format!("\\fB\\-\\-{}\\fR{value}", esc(l)));
    }
    for alias in a.get_visible_aliases().unwrap_or_default() {
        names.push(format!("\\fB\\-\\-{}\\fR{value}", esc(alias)));
    }
    names.join(", ")
}

/// An option's long help, its possible values with theirs, and its default.
fn body(a: &Arg) -> String {
    let help = a.get_long_help().or_else(|| a.get_help()).map(|h| h.to_string()).unwrap_or_default();
    let mut text = help.trim().to_string();
    if !text.is_empty() && !text.ends_with('.') {
        text.push('.');
    }
    let defaults: Vec<String> =
        a.get_default_values().iter().map(|d| d.to_string_lossy().into_owned()).collect();
    if !defaults.is_empty() && a.get_action().takes_values() {
        text.push_str(&format!(" Default: {}.", defaults.join(", ")));
    }
    let values: Vec<_> = a.get_possible_values().into_iter().filter(|v| !v.is_hide_set()).collect();
    let explained = values.iter().any(|v| v.get_help().is_some());
    if !values.is_empty() && !explained && a.get_action().takes_values() {
        let names: Vec<&str> = values.iter().map(|v| v.get_name()).collect();
        text.push_str(&format!(" Values: {}.", names.join(", ")));
    }
    let mut s = indented(&prose(&text));
    if explained && a.get_action().takes_values() {
        s.push_str(".RS\n");
        for v in values {
            s.push_str(&format!(".TP\n\\fB{}\\fR\n", esc(v.get_name())));
            let help = v.get_help().map(|h| h.to_string()).unwrap_or_default();
            s.push_str(&line(&esc(&help)));
        }
        s.push_str(".RE\n");
    }
    s
}

/// Prose as the body of a `.TP` item: no paragraph break before its first line, and
/// later paragraphs keep the item's indentation.
fn indented(roff: &str) -> String {
    let roff = roff.strip_prefix(".PP\n").unwrap_or(roff);
    roff.replace("\n.PP\n", "\n.IP\n")
}

/// Plain text (see [`SECTIONS`]) as roff.
fn prose(text: &str) -> String {
    let mut s = String::new();
    let mut in_example = false;
    let mut paragraph_start = true;
    for raw in text.lines() {
        if let Some(example) = raw.strip_prefix("    ") {
            if !in_example {
                s.push_str(".PP\n.RS 4\n.nf\n");
                in_example = true;
            }
            s.push_str(&line(&esc(example)));
            continue;
        }
        if in_example {
            s.push_str(".fi\n.RE\n");
            in_example = false;
            paragraph_start = true;
        }
        let t = raw.trim();
        if t.is_empty() {
            paragraph_start = true;
        } else if let Some(item) = t.strip_prefix("- ") {
            s.push_str(".IP \\(bu 2\n");
            s.push_str(&line(&esc(item)));
            paragraph_start = false;
        } else if let Some(tag) = t.strip_prefix(": ") {
            s.push_str(".TP\n");
            s.push_str(&line(&format!("\\fB{}\\fR", esc(tag))));
            paragraph_start = false;
        } else {
            if paragraph_start {
                s.push_str(".PP\n");
                paragraph_start = false;
            }
            s.push_str(&line(&esc(t)));
        }
    }
    if in_example {
        s.push_str(".fi\n.RE\n");
    }
    s
}

/// One line of roff text: a line starting with `.` or `'` would be a request.
fn line(text: &str) -> String {
    match text.starts_with(['.', '\'']) {
        true => format!("\\&{text}\n"),
        false => format!("{text}\n"),
    }
}

/// Escapes text for roff: backslashes, `-` as a real minus sign (so options can be
/// searched and copied), other characters than ASCII as `\[uXXXX]`; the backquotes of
/// `--help`'s markup dropped.
fn esc(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => s.push_str("\\e"),
            '-' => s.push_str("\\-"),
            '`' => {}
            c if c.is_ascii() => s.push(c),
            c => s.push_str(&format!("\\[u{:04X}]", u32::from(c))),
        }
    }
    s
}

fn quote_title(title: &str) -> String {
    match title.contains(' ') {
        true => format!("\"{}\"", esc(title)),
        false => esc(title),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_marks_up_paragraphs_items_tags_and_examples() {
        let r = prose("One\ntwo.\n\n- item\n: tag\nbody\n    tandem -v a b\nafter");
        assert_eq!(
            r,
            ".PP\nOne\ntwo.\n.IP \\(bu 2\nitem\n.TP\n\\fBtag\\fR\nbody\n.PP\n.RS 4\n.nf\ntandem \\-v a b\n.fi\n.RE\n.PP\nafter\n"
        );
        assert_eq!(line(".tandem-1-2.tmp"), "\\&.tandem-1-2.tmp\n");
        assert_eq!(esc("`2s`, … ≥ 0 a\\b"), "2s, \\[u2026] \\[u2265] 0 a\\eb");
    }
}
