// Package evidence makes recordings tamper-evident without changing a byte
// of them, and checks them: docs/evidence.md is the specification an
// independent verifier can be written from.
//
//   - A hash chain per recording over 16 KiB blocks (Chain), extended at
//     every durable sync round of the recorder (Store wraps the recorder's
//     store.Store: each sync of a recording appends the new block hashes
//     and a signed sync record to the recording's live chain file, synced
//     before the round's bytes are acknowledged), so that after a crash the
//     chain covers exactly the acknowledged bytes.
//   - A seal at close (Seal, "<key>.seal"): the recording's key, size,
//     status and chain head, signed with the recorder's ed25519 key (Key;
//     generated on first start in the state directory, or a key file; a
//     KMS can implement Signer later). The chain goes beside it
//     ("<key>.chain").
//   - A signed append-only manifest per recorder key (Manifest): one entry
//     per seal and per deletion by policy, hash-chained, written to the
//     store in segments that each end in a signed checkpoint, so a deleted
//     recording, a deleted segment or a rolled-back store is detected.
//   - Verify checks all of that offline, with only the public keys.
//   - Retention deletes by policy and says so in the manifest and the
//     audit log; legal holds (Holds) keep recordings past it, on S3 with the
//     bucket's object lock as well.
package evidence
