package s3test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Client reads and changes a bucket's objects directly, for tests that
// play the part of someone who has the bucket's credentials (tampering,
// deleting).
type Client struct {
	c      *minio.Client
	Bucket string
	Prefix string // put before every name; "" or ending in "/"
}

// NewClient returns a client of srv for bucket, with the server's
// credentials.
func NewClient(t testing.TB, srv *Server, bucket, prefix string) *Client {
	t.Helper()
	c, err := minio.New(srv.Addr, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	return &Client{c: c, Bucket: bucket, Prefix: prefix}
}

// MakeBucket creates the bucket, with object lock enabled if lock.
func (c *Client) MakeBucket(ctx context.Context, lock bool) error {
	return c.c.MakeBucket(ctx, c.Bucket, minio.MakeBucketOptions{ObjectLocking: lock})
}

// Get reads an object; an error for a missing one.
func (c *Client) Get(ctx context.Context, name string) ([]byte, error) {
	obj, err := c.c.GetObject(ctx, c.Bucket, c.Prefix+name, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	return io.ReadAll(obj)
}

// Put writes an object.
func (c *Client) Put(ctx context.Context, name string, data []byte) error {
	_, err := c.c.PutObject(ctx, c.Bucket, c.Prefix+name, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
	return err
}

// Remove deletes an object: in a versioned bucket, every version of it
// (as someone who wants it gone would), failing on the first that cannot
// be deleted.
func (c *Client) Remove(ctx context.Context, name string) error {
	var versions []string
	for oi := range c.c.ListObjectsIter(ctx, c.Bucket, minio.ListObjectsOptions{Prefix: c.Prefix + name, WithVersions: true}) {
		if oi.Err != nil {
			return oi.Err
		}
		if oi.Key == c.Prefix+name {
			versions = append(versions, oi.VersionID)
		}
	}
	if len(versions) == 0 {
		return fmt.Errorf("%s: no such object", name)
	}
	for _, v := range versions {
		opts := minio.RemoveObjectOptions{}
		if v != "" && v != "null" {
			opts.VersionID = v
		}
		if err := c.c.RemoveObject(ctx, c.Bucket, c.Prefix+name, opts); err != nil {
			return err
		}
	}
	return nil
}

// List returns the names of the objects under prefix (after Prefix).
func (c *Client) List(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	for oi := range c.c.ListObjectsIter(ctx, c.Bucket, minio.ListObjectsOptions{Prefix: c.Prefix + prefix, Recursive: true}) {
		if oi.Err != nil {
			return nil, oi.Err
		}
		out = append(out, oi.Key[len(c.Prefix):])
	}
	return out, nil
}
