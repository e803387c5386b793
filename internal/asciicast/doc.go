// Package asciicast reads, writes and checks terminal recordings in the
// asciicast format (https://docs.asciinema.org/manual/asciicast/v2/), the
// format reel stores and Tailscale's senders stream.
//
// A recording is newline-delimited JSON: a header object on line 1, then one
// event array [time, code, data] per line. The Header type keeps Tailscale's
// extra header fields and every field it does not know, so a header survives
// decode and encode unchanged.
//
//   - Encoder writes header and event lines; AppendEvent formats one event
//     without allocating.
//   - Decoder reads a recording line by line with bounded memory. It reads
//     v2, and converts v1 and v3 on the fly into v2-style events.
//   - Checker validates a v2 stream as it arrives, in chunks split anywhere,
//     without buffering event lines; the recorder runs it on its ingest path.
//
// The package does no I/O of its own beyond the io.Reader and io.Writer it is
// given.
package asciicast
