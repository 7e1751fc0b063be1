; Berth's hooks into Tauri's NSIS installer (windows.json: nsis.installerHooks).
;
; berth.exe and docker-credential-berth.exe are installed beside the app, and
; the docker CLI runs a credential helper only if it is on PATH (the install
; sets `credsStore: "berth"`). So the install folder goes on every user's Path,
; as Docker Desktop puts its resources\bin there, and comes off before the
; uninstaller deletes berth.exe. berth.exe does the editing (`berth path-entry`,
; in app/src/os/path_var.rs and windows.rs): NSIS has no list handling of its
; own, and the same code serves `berth install` and its unit tests under Wine.
; A failure is logged and the install goes on: the app still works, and
; `berth install` puts the folder on the user's own Path.

!macro NSIS_HOOK_POSTINSTALL
  nsExec::ExecToLog '"$INSTDIR\berth.exe" path-entry add --machine "$INSTDIR"'
  Pop $0
  StrCmp $0 "0" +2
    DetailPrint "Berth could not put $INSTDIR on PATH (exit $0)"
!macroend

!macro NSIS_HOOK_PREUNINSTALL
  nsExec::ExecToLog '"$INSTDIR\berth.exe" path-entry remove --machine "$INSTDIR"'
  Pop $0
!macroend
