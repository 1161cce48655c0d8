# The Debian package (docs/packaging.md): install rules with Debian 12's layout, and CPack's DEB
# generator. Included from the top-level CMakeLists.txt after the distd and distctl targets.
# Build it from a built tree:  cmake --build BUILD --target distd distctl && cd BUILD && cpack -G DEB
# (or `cmake --build BUILD --target package`, which builds everything first).
include(GNUInstallDirs)
set(pkg ${CMAKE_CURRENT_LIST_DIR})
set(pkg_out ${CMAKE_BINARY_DIR}/packaging)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)  # the Debian revision: distd_<version>-1

# Binaries: /usr/bin when CMAKE_INSTALL_PREFIX is /usr (cpack sets it, see below). Linked with
# -z now (with -z relro, Debian's default, the GOT is read-only), as dpkg-buildflags' hardening=+all.
target_link_options(distd PRIVATE -Wl,-z,relro,-z,now)
target_link_options(distctl PRIVATE -Wl,-z,relro,-z,now)
install(TARGETS distd distctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# A stripped install (cpack: CPACK_STRIP_FILES) also drops .comment and .note, as dh_strip does.
install(CODE "if(CMAKE_INSTALL_DO_STRIP)
  foreach(exe distd distctl)
    execute_process(COMMAND ${CMAKE_STRIP} --remove-section=.comment --remove-section=.note
      \$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/\${exe} COMMAND_ERROR_IS_FATAL ANY)
  endforeach()
endif()")

# Units and the udev rule go where Debian 12's own packages put theirs (dpkg -L systemd):
# /lib/systemd/system and /lib/udev/rules.d. sysusers.d and tmpfiles.d live in /usr/lib there.
# (Absolute: the units' ExecStart= say /usr/bin, so they belong to a /usr install in any case.)
set(DISTD_UNIT_DIR /lib/systemd/system CACHE PATH "systemd system units")
set(DISTD_UDEV_DIR /lib/udev/rules.d CACHE PATH "udev rules")
install(DIRECTORY ${CMAKE_SOURCE_DIR}/systemd/ DESTINATION ${DISTD_UNIT_DIR}
  FILES_MATCHING PATTERN "*.service" PATTERN "*.timer" PATTERN "*.path" PATTERN "*.mount" PATTERN "*.socket")
install(FILES ${CMAKE_SOURCE_DIR}/systemd/90-distd-stick.rules DESTINATION ${DISTD_UDEV_DIR})
install(FILES ${pkg}/distd.sysusers DESTINATION lib/sysusers.d RENAME distd.conf)
install(FILES ${pkg}/distd.tmpfiles DESTINATION lib/tmpfiles.d RENAME distd.conf)

# Docs: /usr/share/doc/distd/*.md (the units' Documentation= point there), formats/, examples/.
set(doc_dir ${CMAKE_INSTALL_DATAROOTDIR}/doc/distd)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${pkg}/copyright DESTINATION ${doc_dir})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/docs/ DESTINATION ${doc_dir} FILES_MATCHING PATTERN "*.md")
install(FILES ${pkg}/examples/hq.toml ${pkg}/examples/center.toml DESTINATION ${doc_dir}/examples)
install(FILES ${pkg}/lintian-overrides DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides RENAME distd)

# Man pages, bash completion and changelog.Debian are made while installing, from the very binaries installed
# (their --help), so they cannot drift from the code; then installed like any file.
install(CODE "execute_process(COMMAND ${pkg}/make-man.sh $<TARGET_FILE:distd> $<TARGET_FILE:distctl>
                ${pkg} ${pkg_out} ${PROJECT_VERSION} ${CPACK_DEBIAN_PACKAGE_RELEASE} COMMAND_ERROR_IS_FATAL ANY)")
install(FILES ${pkg_out}/man/distctl.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${pkg_out}/man/distd.toml.5.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
install(FILES ${pkg_out}/man/distd.8.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES ${pkg_out}/changelog.Debian.gz DESTINATION ${doc_dir})
install(FILES ${pkg_out}/distctl.bash-completion DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/bash-completion/completions
  RENAME distctl)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# The units and the udev rule have absolute destinations: install into a DESTDIR, prefix /usr.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_NAME distd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "distd maintainers <maintainers@users.noreply.r-seed-f1c987f3.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "signed, resumable distribution of Moodle files to offline sites")
set(CPACK_PACKAGE_DESCRIPTION "distd distributes Moodle's files and course backups from headquarters
to regional centers behind a slow link that drops for days. HQ publishes
Ed25519-signed manifests; each center fetches only what changed (librsync
deltas), resumes after every cut and installs only verified bytes. USB
sticks carry the same signed content when the link is down.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends: the shared libraries the binaries link, computed by dpkg-shlibdeps, and adduser for
# postinst where systemd-sysusers is missing. distd runs without systemd (no units then).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "systemd")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "nginx, mariadb-server")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${pkg}/deb/postinst ${pkg}/deb/prerm ${pkg}/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
