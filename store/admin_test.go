package store_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// adminFixture makes an organization, a site and n active users who are Access Administrators
// of the site.
func adminFixture(t *testing.T, n int) (*store.AdminStore, *admin.Site, []*admin.User) {
	t.Helper()
	ctx := context.Background()
	st := store.NewAdminStore(storetest.New(t))
	o := &admin.Organization{Code: "ORG", Name: "Org"}
	if err := st.CreateOrganization(ctx, o); err != nil {
		t.Fatal(err)
	}
	s := &admin.Site{OrganizationID: o.ID, Code: "SITE", Name: "Site", Status: admin.SiteTesting, Facilities: []string{"FAC"}}
	if err := st.CreateSite(ctx, s); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	var users []*admin.User
	for i := range n {
		u := &admin.User{Username: fmt.Sprintf("aa%d", i), FirstName: "A", LastName: fmt.Sprint(i), Email: fmt.Sprintf("aa%d@x.test", i),
			Status: admin.UserActive, PasswordHash: "$argon2id$x", LastActiveAt: &now, CreatedAt: now,
			Memberships: []admin.Membership{{SiteID: s.ID, Role: admin.RoleAdministrator, Designations: []admin.Designation{admin.DesignationAccessAdministrator}}}}
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	return st, s, users
}

func TestAdminStoreSite(t *testing.T) {
	_, s, _ := adminFixture(t, 0)
	if s.ID == 0 || s.OrganizationCode != "ORG" || s.HealthSystemID == 0 || len(s.Facilities) != 1 || s.Facilities[0] != "FAC" {
		t.Fatalf("site = %+v", s)
	}
}

// TestAdminStoreLastAAConcurrent races the deactivation, the demotion and the removal of the
// only two AAs of a site: whatever the interleaving, one AA must remain.
func TestAdminStoreLastAAConcurrent(t *testing.T) {
	ops := map[string]func(st *store.AdminStore, site *admin.Site, u *admin.User) error{
		"deactivate": func(st *store.AdminStore, _ *admin.Site, u *admin.User) error {
			return st.SetUserStatus(context.Background(), u.ID, admin.UserInactiveManual, time.Now())
		},
		"demote": func(st *store.AdminStore, site *admin.Site, u *admin.User) error {
			_, err := st.PutMembership(context.Background(), admin.Membership{UserID: u.ID, SiteID: site.ID, Role: admin.RoleTypicalUser, Designations: []admin.Designation{}}, time.Now())
			return err
		},
		"remove": func(st *store.AdminStore, site *admin.Site, u *admin.User) error {
			_, err := st.DeleteMembership(context.Background(), u.ID, site.ID)
			return err
		},
	}
	pairs := [][2]string{{"deactivate", "deactivate"}, {"deactivate", "demote"}, {"demote", "remove"}, {"remove", "deactivate"}}
	for _, pair := range pairs {
		t.Run(pair[0]+"+"+pair[1], func(t *testing.T) {
			st, site, users := adminFixture(t, 2)
			errs := make([]error, 2)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errs[i] = ops[pair[i]](st, site, users[i])
				}()
			}
			close(start)
			wg.Wait()
			failed := 0
			for _, err := range errs {
				if err != nil {
					if !errors.Is(err, admin.ErrLastAA) {
						t.Fatalf("unexpected error %v", err)
					}
					failed++
				}
			}
			if failed != 1 {
				t.Fatalf("errors %v: want exactly one refusal", errs)
			}
		})
	}
}

func TestAdminStoreConsumeInviteOnce(t *testing.T) {
	st, site, users := adminFixture(t, 1)
	ctx := context.Background()
	now := time.Now().UTC()
	h := sha256.Sum256([]byte("token"))
	if err := st.CreateInvite(ctx, &admin.Invite{UserID: users[0].ID, SiteID: site.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, h[:]); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := st.ConsumeInvite(ctx, h[:], now)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				ok++
			} else if !errors.Is(err, admin.ErrInviteInvalid) {
				t.Errorf("ConsumeInvite: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d uses of a single-use invitation", ok)
	}
	// Expired ones are refused.
	h2 := sha256.Sum256([]byte("token2"))
	if err := st.CreateInvite(ctx, &admin.Invite{UserID: users[0].ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, h2[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ConsumeInvite(ctx, h2[:], now.Add(2*time.Hour)); !errors.Is(err, admin.ErrInviteInvalid) {
		t.Fatalf("expired invitation: %v", err)
	}
}

func TestAdminStoreLoginFailuresAtomic(t *testing.T) {
	st, _, users := adminFixture(t, 1)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := st.RecordLoginFailure(ctx, users[0].ID, 5, time.Now()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	u, err := st.User(ctx, users[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if u.FailedLogins != 10 || !u.Locked() {
		t.Fatalf("failures %d locked %v", u.FailedLogins, u.Locked())
	}
}

func TestAdminStoreTxRollsBack(t *testing.T) {
	st, _, _ := adminFixture(t, 0)
	ctx := context.Background()
	boom := errors.New("boom")
	err := st.Tx(ctx, func(tx admin.Store) error {
		if err := tx.CreateOrganization(ctx, &admin.Organization{Code: "KEEP", Name: "k"}); err != nil {
			return err
		}
		// A failing savepoint does not undo the outer work.
		_ = tx.Tx(ctx, func(inner admin.Store) error {
			if err := inner.CreateOrganization(ctx, &admin.Organization{Code: "INNER", Name: "i"}); err != nil {
				return err
			}
			return boom
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.OrganizationByCode(ctx, "KEEP"); err != nil {
		t.Errorf("KEEP: %v", err)
	}
	if _, err := st.OrganizationByCode(ctx, "INNER"); !errors.Is(err, admin.ErrNotFound) {
		t.Errorf("INNER: %v", err)
	}
	err = st.Tx(ctx, func(tx admin.Store) error {
		if err := tx.CreateOrganization(ctx, &admin.Organization{Code: "GONE", Name: "g"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if _, err := st.OrganizationByCode(ctx, "GONE"); !errors.Is(err, admin.ErrNotFound) {
		t.Errorf("GONE: %v", err)
	}
}

func TestAdminStoreConstraints(t *testing.T) {
	st, site, users := adminFixture(t, 1)
	ctx := context.Background()
	now := time.Now().UTC()
	dup := &admin.User{Username: "AA0", FirstName: "x", LastName: "y", Email: "new@x.test", Status: admin.UserInvited, CreatedAt: now}
	if err := st.CreateUser(ctx, dup); !errors.Is(err, admin.ErrUsernameTaken) {
		t.Errorf("duplicate username (other case): %v", err)
	}
	dup = &admin.User{Username: "other", FirstName: "x", LastName: "y", Email: "AA0@X.TEST", Status: admin.UserInvited, CreatedAt: now}
	if err := st.CreateUser(ctx, dup); !errors.Is(err, admin.ErrDuplicateUser) {
		t.Errorf("duplicate email (other case): %v", err)
	}
	// The AA designation goes with any role (it grants user management; the role, patient access).
	_, err := st.PutMembership(ctx, admin.Membership{UserID: users[0].ID, SiteID: site.ID, Role: admin.RoleReadOnly,
		Designations: []admin.Designation{admin.DesignationAccessAdministrator}}, now)
	if err != nil {
		t.Errorf("AA with Read Only: %v", err)
	}
	// Usernames are unique regardless of case and of the separators . _ -
	dup = &admin.User{Username: "A_A0", FirstName: "x", LastName: "y", Email: "folded@x.test", Status: admin.UserInvited, CreatedAt: now}
	if err := st.CreateUser(ctx, dup); !errors.Is(err, admin.ErrUsernameTaken) {
		t.Errorf("username differing only by case and separator: %v", err)
	}
}
