/** A snapshot name: a plain word, safe in virsh arguments, file names and logs (validateSnapshotName). */
export const SNAPSHOT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
