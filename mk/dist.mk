# dist/: the systemd units (metronomed.service, metronomed@.service for
# several servers on one host, mtrproxy.service), made from their .in files
# with the install paths, installed to systemdsystemunitdir (configure
# --with-systemdsystemunitdir; default PREFIX/lib/systemd/system; no: not
# installed); and the example configurations, installed under
# $(sysconfdir)/metronome unless a file of that name is there already (an
# operator's configuration is never overwritten).  doc/operations.md.
UNIT_FILES = dist/metronomed.service dist/metronomed@.service dist/mtrproxy.service
if HAVE_SYSTEMD_UNITDIR
systemdsystemunit_DATA = $(UNIT_FILES)
endif
noinst_DATA = $(UNIT_FILES)
CLEANFILES += $(UNIT_FILES)
EXTRA_DIST += doc/operations.md dist/metronomed.service.in dist/metronomed@.service.in dist/mtrproxy.service.in

unit_edit = $(MKDIR_P) dist && sed -e 's|@bindir[@]|$(bindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g'
dist/metronomed.service: $(srcdir)/dist/metronomed.service.in Makefile
	$(AM_V_GEN)$(unit_edit) $(srcdir)/dist/metronomed.service.in >$@
dist/metronomed@.service: $(srcdir)/dist/metronomed@.service.in Makefile
	$(AM_V_GEN)$(unit_edit) $(srcdir)/dist/metronomed@.service.in >$@
dist/mtrproxy.service: $(srcdir)/dist/mtrproxy.service.in Makefile
	$(AM_V_GEN)$(unit_edit) $(srcdir)/dist/mtrproxy.service.in >$@

EXAMPLE_CONFS = metronomed.conf mtrproxy.conf
install-data-local:
	$(MKDIR_P) '$(DESTDIR)$(sysconfdir)/metronome'
	for f in $(EXAMPLE_CONFS); do \
		test -f '$(DESTDIR)$(sysconfdir)/metronome/'$$f || \
			$(INSTALL) -m 0640 '$(srcdir)/doc/'$$f '$(DESTDIR)$(sysconfdir)/metronome/'$$f || exit 1; \
	done
uninstall-local:
	for f in $(EXAMPLE_CONFS); do \
		cmp -s '$(srcdir)/doc/'$$f '$(DESTDIR)$(sysconfdir)/metronome/'$$f && \
			rm -f '$(DESTDIR)$(sysconfdir)/metronome/'$$f; \
	done; true
