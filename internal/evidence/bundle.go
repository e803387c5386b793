package evidence

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/reel-rec/reel/internal/store"
)

// BundleItem is one recording copied into a bundle.
type BundleItem struct {
	Info store.Info
	// Size and SHA256 are the length and SHA-256 (hex) of the
	// recording's stream as stored: the recording file followed by its
	// tail, if any.
	Size   int64
	SHA256 string
	// KeyID names the key of its seal; empty when it has none.
	KeyID string
	// Chain is set when its chain file was copied too.
	Chain bool
}

// BundleResult says what Bundle copied.
type BundleResult struct {
	Items []BundleItem
	// KeyIDs are the keys whose manifests (every segment, and the head)
	// and published public keys were copied, sorted.
	KeyIDs []string
	// PublicKeys holds the public key files found in the source store, by
	// key id. They are a convenience: a receiver must get the key to
	// trust from the recorder's operator, not from the bundle.
	PublicKeys map[string][]byte
}

// Bundle copies the recordings keys from src into dst, an empty store (a
// fresh folder for fsstore), so that Verify on dst, with Only set to keys
// and the recorder's public key, proves them: each recording's bytes under
// the same key with the same status (through dst.Create, so the copy is a
// store like any other), its seal and chain, and for every key that sealed
// them that key's whole manifest and published public key. The manifest is
// copied whole because it is one hash chain: the entries of a recording
// are proved by the chain from the first entry to a signed checkpoint.
// It therefore lists the keys, sizes and statuses of the recorder's other
// recordings (not their contents).
//
// A live recording cannot be bundled: it is not sealed yet. progress, if
// set, is told the bytes copied of the total.
func Bundle(ctx context.Context, src, dst Backend, keys []string, progress func(done, total int64)) (*BundleResult, error) {
	res := &BundleResult{PublicKeys: map[string][]byte{}}
	var infos []store.Info
	var total int64
	seen := map[string]bool{}
	for _, key := range keys {
		if seen[key] {
			continue
		}
		seen[key] = true
		info, err := src.Stat(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("bundle: %w", err)
		}
		if info.Status == store.StatusLive {
			return nil, fmt.Errorf("bundle: %s is live: it is sealed when it ends; bundle it then", key)
		}
		st, err := openStream(ctx, src, key)
		if err != nil {
			return nil, fmt.Errorf("bundle: %w", err)
		}
		total += st.file + st.tail // Info.Size leaves the tail out
		st.Close()
		infos = append(infos, info)
	}
	var done int64
	ids := map[string]bool{}
	for _, info := range infos {
		item, err := bundleOne(ctx, src, dst, info, func(n int64) {
			done += n
			if progress != nil {
				progress(done, total)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("bundle %s: %w", info.Key, err)
		}
		if item.KeyID != "" {
			ids[item.KeyID] = true
		}
		res.Items = append(res.Items, item)
	}
	for id := range ids {
		res.KeyIDs = append(res.KeyIDs, id)
	}
	slices.Sort(res.KeyIDs)
	for _, id := range res.KeyIDs {
		if err := copyFiles(ctx, src, dst, manifestDir+id+"/"); err != nil {
			return nil, fmt.Errorf("bundle: the manifest of key %s: %w", id, err)
		}
		name := keysDir + id + ".pub"
		b, err := store.ReadFile(ctx, src, name)
		switch {
		case errors.Is(err, store.ErrNotFound):
			continue
		case err != nil:
			return nil, fmt.Errorf("bundle: %w", err)
		}
		if err := dst.PutFile(ctx, name, b); err != nil {
			return nil, fmt.Errorf("bundle: %w", err)
		}
		res.PublicKeys[id] = b
	}
	return res, nil
}

// bundleOne copies one recording with its seal and chain.
func bundleOne(ctx context.Context, src, dst Backend, info store.Info, copied func(int64)) (BundleItem, error) {
	item := BundleItem{Info: info}
	_, start, err := store.ParseKey(info.Key)
	if err != nil {
		return item, err
	}
	st, err := openStream(ctx, src, info.Key)
	if err != nil {
		return item, err
	}
	defer st.Close()
	w, err := dst.Create(ctx, info.Sender, start)
	if err != nil {
		return item, err
	}
	if w.Key() != info.Key {
		err := fmt.Errorf("the copy got the key %s: bundle into an empty folder", w.Key())
		return item, errors.Join(err, w.Close(store.StatusFailed, "not the bundled recording"))
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return item, errors.Join(err, w.Close(store.StatusFailed, "bundling stopped"))
		}
		n, rerr := st.Read(buf)
		if n > 0 {
			h.Write(buf[:n])
			if _, err := w.Write(buf[:n]); err != nil {
				return item, errors.Join(err, w.Close(store.StatusFailed, err.Error()))
			}
			item.Size += int64(n)
			copied(int64(n))
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return item, errors.Join(rerr, w.Close(store.StatusFailed, rerr.Error()))
		}
	}
	if err := w.Close(info.Status, info.Reason); err != nil {
		return item, err
	}
	item.SHA256 = hex.EncodeToString(h.Sum(nil))
	if b, err := store.ReadFile(ctx, src, info.Key+SealSuffix); err == nil {
		if s, err := ParseSeal(b); err == nil {
			item.KeyID = s.KeyID
		}
		if err := dst.PutFile(ctx, info.Key+SealSuffix, b); err != nil {
			return item, err
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return item, err
	}
	if b, err := store.ReadFile(ctx, src, info.Key+ChainSuffix); err == nil {
		if err := dst.PutFile(ctx, info.Key+ChainSuffix, b); err != nil {
			return item, err
		}
		item.Chain = true
	} else if !errors.Is(err, store.ErrNotFound) {
		return item, err
	}
	return item, nil
}

// copyFiles copies every file under dir from src to dst.
func copyFiles(ctx context.Context, src, dst store.Files, dir string) error {
	for name, err := range src.ListFiles(ctx, dir) {
		if err != nil {
			return err
		}
		b, err := store.ReadFile(ctx, src, name)
		if err != nil {
			return err
		}
		if err := dst.PutFile(ctx, name, b); err != nil {
			return err
		}
	}
	return nil
}
