// Package vt is the terminal emulator reel feeds recorded output through, so
// that search sees text as it was displayed and the player can start from a
// snapshot of the screen.
//
// A Terminal takes the bytes a program wrote to its terminal (Write), follows
// size changes (Resize), and answers:
//
//   - what is on the screen, row by row (AppendRow, Row, Lines), and whether
//     the alternate screen of a full-screen program is showing (AltScreen);
//   - which lines left the main screen, in order, with whether each one
//     continues on the next (soft wrap) and when it last changed
//     (Config.LineOff, Line.Stamp, SetStamp);
//   - when a full-screen program's screen is about to be wiped
//     (Config.AltWipe), so a caller can read it first;
//   - an ANSI dump of the state (Dump): written to a fresh terminal of the
//     same size it reproduces the screen, its colours and attributes, the
//     cursor and the modes that change how later output lands.
//
// The emulator follows xterm for what changes the screen: printing with
// autowrap, wide characters, the cursor movements, erase/insert/delete,
// scroll regions, the alternate screen (47, 1047, 1049), origin and insert
// modes, tab stops, DEC line drawing, SGR with 16, 256 and 24-bit colours,
// save/restore cursor, soft and hard reset. It never answers a terminal
// query (DA, DSR, window reports, OSC colour queries): there is nobody to
// answer, and nothing can block on a reply. Titles, hyperlinks, mouse and
// keyboard modes are parsed and ignored.
//
// It is written for throughput on recorded sessions: scrolling moves row
// pointers, printable ASCII takes a tight loop, and a Write allocates
// nothing once the screen exists. It is not safe for concurrent use.
package vt
