# debian_memcached: memcached 1.6.18 from Debian 12's source package, built with `graft flags
# target` by prepare.sh (scripts/test.sh runs it: it needs apt-get source), outside the build tree
# (GRAFT_DEBIAN_DIR, /var/tmp/graft-debian) so that every build configuration shares it.
