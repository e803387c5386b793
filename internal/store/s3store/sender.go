package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/minio/minio-go/v7"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/durable"
)

// A node that is not its sender's identity unchanged (store.SenderKey) has
// the identity kept in the object <node>/.sender, and in the spool, until
// and after it has landed, in rec/<node>/.sender. It lands before anything
// of the node does, so a reader that sees a recording can name its sender.

// senders caches what is known of nodes' senders.
type senders struct {
	mu     sync.Mutex
	known  map[string]string // node -> its sender's identity
	landed map[string]bool   // nodes whose .sender object is in the bucket
}

func (c *senders) get(node string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	owner, ok := c.known[node]
	return owner, ok
}

func (c *senders) set(node, sender string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.known == nil {
		c.known = map[string]string{}
	}
	c.known[node] = sender
}

// claim makes sure node is sender's, keeping the identity in the spool
// (durably, before anything is spooled under node) where it must be kept.
func (sp *spool) claim(node, sender string) error {
	if owner, ok := sp.s.senders.get(node); ok {
		if owner != sender {
			return store.NodeTaken(node, sender, owner)
		}
		return nil
	}
	sp.claimMu.Lock()
	defer sp.claimMu.Unlock()
	owner, err := sp.spooledSender(node)
	if err != nil {
		return err
	}
	if key, kept := store.SenderKey(node); kept && owner == node {
		if err := durable.MkdirAll(filepath.Dir(sp.recPath(key))); err != nil {
			return err
		}
		if err := durable.WriteFile(sp.recPath(key), []byte(sender)); err != nil {
			return fmt.Errorf("s3store: keep the sender's identity: %w", err)
		}
		owner = sender
	}
	if owner != sender {
		return store.NodeTaken(node, sender, owner)
	}
	sp.s.senders.set(node, sender)
	return nil
}

// spooledSender returns node's sender as the spool keeps it (node itself
// when it keeps none).
func (sp *spool) spooledSender(node string) (string, error) {
	key, kept := store.SenderKey(node)
	if !kept {
		return node, nil
	}
	f, err := os.Open(sp.recPath(key))
	if errors.Is(err, fs.ErrNotExist) {
		return node, nil
	}
	if err != nil {
		return "", fmt.Errorf("s3store: spool: sender of %s: %w", node, err)
	}
	defer f.Close()
	return readSender(f, node)
}

func readSender(r io.Reader, node string) (string, error) {
	sender, err := store.ReadSender(r)
	if err != nil {
		return "", fmt.Errorf("s3store: sender of %s: %w", node, err)
	}
	return sender, nil
}

// landSender puts node's .sender object in the bucket, if the node keeps
// one and it is not there yet. Called before anything of node lands.
func (s *Store) landSender(ctx context.Context, node string) error {
	key, kept := store.SenderKey(node)
	if !kept {
		return nil
	}
	s.senders.mu.Lock()
	done := s.senders.landed[node]
	s.senders.mu.Unlock()
	if done {
		return nil
	}
	sender, err := s.sp.spooledSender(node)
	if err != nil || sender == node {
		return err // nothing kept: the node is the identity
	}
	have, err := s.bucketSender(ctx, node)
	switch {
	case err != nil:
		return err
	case have == node: // none yet
		if err := s.putObject(ctx, key, bytes.NewReader([]byte(sender)), int64(len(sender))); err != nil {
			return err
		}
	case have != sender:
		return store.NodeTaken(node, sender, have)
	}
	s.senders.mu.Lock()
	if s.senders.landed == nil {
		s.senders.landed = map[string]bool{}
	}
	s.senders.landed[node] = true
	s.senders.mu.Unlock()
	return nil
}

// bucketSender reads node's .sender object; node itself when there is
// none.
func (s *Store) bucketSender(ctx context.Context, node string) (string, error) {
	key, _ := store.SenderKey(node)
	body, _, _, err := s.core.GetObject(ctx, s.cfg.Bucket, s.objKey(key), minio.GetObjectOptions{})
	if isNoSuchKey(err) {
		return node, nil
	}
	if err != nil {
		return "", fmt.Errorf("s3store: sender of %s: %w", node, err)
	}
	defer body.Close()
	return readSender(body, node)
}

// senderOf returns the identity of node's sender: from what this process
// knows, the spool, or the bucket.
func (s *Store) senderOf(ctx context.Context, node string) (string, error) {
	if _, kept := store.SenderKey(node); !kept {
		return node, nil
	}
	if owner, ok := s.senders.get(node); ok {
		return owner, nil
	}
	owner := node
	var err error
	if s.sp != nil {
		owner, err = s.sp.spooledSender(node)
	}
	if err == nil && owner == node {
		owner, err = s.bucketSender(ctx, node)
	}
	if err != nil {
		return "", err
	}
	s.senders.set(node, owner)
	return owner, nil
}
