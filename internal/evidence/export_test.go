package evidence

import "crypto/ed25519"

// crash simulates the process dying: the lock and the journal are let go,
// nothing is flushed.
func (s *Store) crash() {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		s.man.close()
		s.lock.Close()
	})
}

// fixedPriv is a key for fuzz seeds.
func fixedPriv() ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	return ed25519.NewKeyFromSeed(seed)
}
