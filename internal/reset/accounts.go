package reset

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	ciptypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
)

// AccountDeleter deletes the sign-in accounts of removed users.
type AccountDeleter interface {
	DeleteAccounts(ctx context.Context, userIDs []string) error
}

// cognitoAPI is the one Cognito call the reset makes.
type cognitoAPI interface {
	AdminDeleteUser(ctx context.Context, in *cip.AdminDeleteUserInput, optFns ...func(*cip.Options)) (*cip.AdminDeleteUserOutput, error)
}

var _ cognitoAPI = (*cip.Client)(nil)

// CognitoAccounts deletes users' accounts from the user pool, one AdminDeleteUser
// each (Cognito has no batch delete). A user's id is their Cognito sub; the pool's
// username is the email (UsernameAttributes), and AdminDeleteUser takes the sub as
// the username on AWS as in cognito-local, so the reset needs no lookup.
type CognitoAccounts struct {
	Cognito cognitoAPI
	PoolID  string
	// Parallel bounds the calls in flight: AdminDeleteUser shares the pool's
	// user-administration quota (tens of requests a second); the SDK's retryer
	// takes throttling. 0 means 4.
	Parallel int
}

// DeleteAccounts deletes every account; one already gone (UserNotFoundException)
// counts as deleted, so a page redone after a crash goes through.
func (c *CognitoAccounts) DeleteAccounts(ctx context.Context, userIDs []string) error {
	parallel := c.Parallel
	if parallel <= 0 {
		parallel = 4
	}
	sem := make(chan struct{}, parallel)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, id := range userIDs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := c.Cognito.AdminDeleteUser(ctx, &cip.AdminDeleteUserInput{UserPoolId: aws.String(c.PoolID), Username: aws.String(id)})
			var gone *ciptypes.UserNotFoundException
			if err != nil && !errors.As(err, &gone) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("delete the account of user %q: %w", id, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
