package report

import (
	"context"
	"time"
)

// SummarizeClosed is what RunSummaries does after its first run: summarize and roll up the
// closed days of the lookback that are not rolled up yet.
func (s *Service) SummarizeClosed(ctx context.Context, lookback time.Duration) (int64, error) {
	return s.summarizeRecent(ctx, lookback, false)
}
