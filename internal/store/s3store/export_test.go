package s3store

// Crash simulates the recorder process dying: uploads under way are cut
// off, nothing more is written to the spool or the bucket, and the spool's
// lock is dropped, so that a second Open on the same spool sees what a
// restarted recorder would.
func Crash(s *Store) {
	s.closeOnce.Do(func() { s.sp.close(true) })
}
