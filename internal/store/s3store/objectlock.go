package s3store

import (
	"context"
	"fmt"

	"github.com/minio/minio-go/v7"

	"github.com/reel-rec/reel/internal/store"
)

// ObjectLock reports whether the bucket has S3 object lock enabled (it can
// only be enabled when the bucket is created, and makes it versioned).
func (s *Store) ObjectLock(ctx context.Context) (bool, error) {
	enabled, _, _, _, err := s.client.GetObjectLockConfig(ctx, s.cfg.Bucket)
	if err != nil {
		switch errCode(err) {
		case "ObjectLockConfigurationNotFoundError", "ObjectLockConfigurationNotFound", "NoSuchObjectLockConfiguration", "NotImplemented":
			return false, nil
		}
		return false, fmt.Errorf("s3store: object lock of bucket %s: %w", s.cfg.Bucket, err)
	}
	return enabled == "Enabled", nil
}

// SetLegalHold sets (on) or clears the S3 legal hold of the current
// version of name's object: while it is set, the bucket refuses to delete
// or overwrite that version, whatever the credentials. A name not yet
// landed fails with store.ErrLive; a missing one with store.ErrNotFound.
func (s *Store) SetLegalHold(ctx context.Context, name string, on bool) error {
	kind, key, err := store.CheckFileName(name)
	if err != nil {
		return fmt.Errorf("s3store: legal hold: %w", err)
	}
	if kind == store.FileRecording && s.spooled(key) != nil {
		return fmt.Errorf("s3store: legal hold of %s: %w", name, store.ErrLive)
	}
	if kind != store.FileRecording {
		if _, ok, _ := s.spooledFile(name); ok {
			return fmt.Errorf("s3store: legal hold of %s: %w", name, store.ErrLive)
		}
	}
	status := minio.LegalHoldDisabled
	if on {
		status = minio.LegalHoldEnabled
	}
	err = s.client.PutObjectLegalHold(ctx, s.cfg.Bucket, s.objKey(name), minio.PutObjectLegalHoldOptions{Status: &status})
	if isNoSuchKey(err) {
		return fmt.Errorf("s3store: legal hold of %s: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("s3store: legal hold of %s: %w", s.objKey(name), err)
	}
	return nil
}

// LegalHold reports whether the current version of name's object has its
// S3 legal hold set.
func (s *Store) LegalHold(ctx context.Context, name string) (bool, error) {
	st, err := s.client.GetObjectLegalHold(ctx, s.cfg.Bucket, s.objKey(name), minio.GetObjectLegalHoldOptions{})
	if isNoSuchKey(err) {
		return false, fmt.Errorf("s3store: legal hold of %s: %w", name, store.ErrNotFound)
	}
	if err != nil {
		if errCode(err) == "NoSuchObjectLockConfiguration" {
			return false, nil
		}
		return false, fmt.Errorf("s3store: legal hold of %s: %w", s.objKey(name), err)
	}
	return st != nil && *st == minio.LegalHoldEnabled, nil
}
