package fsstore

// Crash simulates the process dying: the lock is dropped and nothing is
// closed or synced, so a second Open on the same directory sees what a
// restarted recorder would.
func Crash(s *Store) {
	s.lock.Close()
}
