package s3store

// ReportMetrics calls report once for each of the store's metrics, with
// its Prometheus name and help, whether it is a counter (else a gauge), and
// its value now. It keeps the store free of any metrics library: the
// recorder adapts it to its registry.
func (s *Store) ReportMetrics(report func(name, help string, counter bool, value float64)) {
	m := s.Metrics()
	alarm := 0.0
	if m.SpoolAlarm {
		alarm = 1
	}
	report("reel_s3_spool_bytes", "Bytes the local S3 spool holds.", false, float64(m.SpoolBytes))
	report("reel_s3_spool_limit_bytes", "Most bytes the S3 spool may hold (--s3-spool-max).", false, float64(m.SpoolLimit))
	report("reel_s3_spool_alarm", "1 when the S3 spool is past its warning level (uploads are behind).", false, alarm)
	report("reel_s3_uploads_pending", "Recordings and event segments not yet landed in the bucket, live ones included.", false, float64(m.UploadsPending))
	report("reel_s3_uploads_failing", "Uploads waiting to retry after a failure.", false, float64(m.UploadsFailing))
	report("reel_s3_upload_retries_total", "Failed upload attempts.", true, float64(m.Retries))
	report("reel_s3_objects_landed_total", "Recordings and event segments completed in the bucket.", true, float64(m.Landed))
	report("reel_s3_landed_bytes_total", "Bytes of the objects completed in the bucket.", true, float64(m.LandedBytes))
}
