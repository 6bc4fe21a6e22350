// The script of the pages a mailed link opens, a claim link's and a support reset's
// confirmation (bundled by esbuild into ../claim.bundle.js; `make claimpage` rebuilds
// it). It reads the link's token from the URL fragment, which browsers never send to a
// server, signs the addressee in against the user pool when this browser has no
// session, and uses the link only when the person presses the button: POST to the
// page's own path with the access token and the token in the body (a claim's answer
// sets the key's cookie; no body ever holds it). Without the addressee's session
// nothing here changes the link: a mail scanner that runs this script, submits its
// forms and clicks its buttons gets sign-in errors, or a 401 or 403.
import {
  AuthenticationDetails,
  CognitoUser,
  CognitoUserPool,
} from "amazon-cognito-identity-js";

// The sign-in's messages, shared by every kind of page; then each kind's own.
const common = {
  en: {
    working: "Please wait…",
    newPassword: "Choose a new password to finish your first sign-in.",
    totp: "Enter the code from your authenticator app.",
    mfaSetup: "Your account needs multi-factor authentication set up first: sign in to the vault, then open this link again.",
    badSignIn: "Sign-in failed: check the email address and password.",
    badCode: "That code was not accepted; try again.",
    unauthorized: "Your session has expired: sign in again.",
    rateLimited: "Too many attempts; try again later.",
  },
  fr: {
    working: "Veuillez patienter…",
    newPassword: "Choisissez un nouveau mot de passe pour terminer votre première connexion.",
    totp: "Saisissez le code de votre application d'authentification.",
    mfaSetup: "Votre compte doit d'abord activer l'authentification multifacteur : connectez-vous au coffre, puis rouvrez ce lien.",
    badSignIn: "Échec de la connexion : vérifiez l'adresse e-mail et le mot de passe.",
    badCode: "Ce code n'a pas été accepté ; réessayez.",
    unauthorized: "Votre session a expiré : reconnectez-vous.",
    rateLimited: "Trop de tentatives ; réessayez plus tard.",
  },
};

// data-kind on the body says which page this is: a claim link (the key into this
// browser's cookie) or a support reset's confirmation (the kept admin confirms).
const byKind = {
  claim: {
    en: {
      noToken: "This link is incomplete: open the whole link from the mail.",
      signIn: "Sign in as the person this link was sent to.",
      signedIn: "Signed in as {who}. Press the button to store the key in this browser.",
      done: "The organization key is stored in this browser. You can close this page and open the vault.",
      wrongUser: "This link was sent to someone else. Sign out and sign in as the person it was sent to.",
      gone: "This link is no longer valid. Ask an administrator of your organization to send the key again.",
      failed: "The key could not be stored right now; try again in a few minutes.",
    },
    fr: {
      noToken: "Ce lien est incomplet : ouvrez le lien entier depuis le courriel.",
      signIn: "Connectez-vous en tant que destinataire de ce lien.",
      signedIn: "Connecté en tant que {who}. Appuyez sur le bouton pour enregistrer la clé dans ce navigateur.",
      done: "La clé d'organisation est enregistrée dans ce navigateur. Vous pouvez fermer cette page et ouvrir le coffre.",
      wrongUser: "Ce lien a été envoyé à quelqu'un d'autre. Déconnectez-vous et connectez-vous en tant que son destinataire.",
      gone: "Ce lien n'est plus valide. Demandez à un administrateur de votre organisation de vous renvoyer la clé.",
      failed: "La clé n'a pas pu être enregistrée pour le moment ; réessayez dans quelques minutes.",
    },
  },
  "reset-confirm": {
    en: {
      noToken: "This link is incomplete: open the whole link from the mail.",
      signIn: "Sign in as the administrator this mail was sent to.",
      signedIn: "Signed in as {who}. Press the button to confirm the reset; nothing happens until you do.",
      done: "The reset is confirmed. Once it has run you will be mailed the new key.",
      wrongUser: "This confirmation was sent to another administrator. Sign out and sign in as them.",
      gone: "This link is no longer valid: the reset was confirmed already, cancelled, replaced by a newer link, or it expired.",
      failed: "The reset could not be confirmed right now; try again in a few minutes.",
    },
    fr: {
      noToken: "Ce lien est incomplet : ouvrez le lien entier depuis le courriel.",
      signIn: "Connectez-vous en tant que l'administrateur à qui ce courriel a été envoyé.",
      signedIn: "Connecté en tant que {who}. Appuyez sur le bouton pour confirmer la réinitialisation ; rien ne se passe avant.",
      done: "La réinitialisation est confirmée. Une fois effectuée, vous recevrez la nouvelle clé par courriel.",
      wrongUser: "Cette confirmation a été envoyée à un autre administrateur. Déconnectez-vous et connectez-vous en tant que lui.",
      gone: "Ce lien n'est plus valide : la réinitialisation a déjà été confirmée, annulée, remplacée par un lien plus récent, ou elle a expiré.",
      failed: "La réinitialisation n'a pas pu être confirmée pour le moment ; réessayez dans quelques minutes.",
    },
  },
};

const $ = (id) => document.getElementById(id);
const lang = document.documentElement.lang === "fr" ? "fr" : "en";
const kind = byKind[document.body.dataset.kind] || byKind.claim;
const text = Object.assign({}, common[lang], kind[lang]);

function say(key, who) {
  $("status").textContent = text[key].replace("{who}", who || "");
}

function show(id) {
  for (const el of ["signin", "newpassword", "totp", "claim"]) {
    $(el).hidden = el !== id;
  }
}

// The token, read once; the fragment is then dropped from the address bar and the
// history so that it is not left behind in this browser.
function readToken() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token") || "";
  if (location.hash) {
    history.replaceState(null, "", location.pathname);
  }
  return token;
}

const token = readToken();
const cfg = document.body.dataset;
const pool = new CognitoUserPool({
  UserPoolId: cfg.pool,
  ClientId: cfg.client,
  endpoint: cfg.endpoint,
});

let session = null; // the addressee's CognitoUserSession once signed in
let pending = null; // the CognitoUser and callbacks of a sign-in awaiting a challenge

function signedIn(user, s) {
  session = s;
  pending = null;
  const who = (s.getIdToken().payload.email || user.getUsername() || "").toString();
  show("claim");
  say("signedIn", who);
}

function callbacks(user) {
  const cb = {
    onSuccess: (s) => signedIn(user, s),
    onFailure: (err) => {
      say(err && err.code === "CodeMismatchException" ? "badCode" : "badSignIn");
    },
    newPasswordRequired: () => {
      pending = { user, cb, challenge: "new" };
      show("newpassword");
      say("newPassword");
    },
    totpRequired: () => {
      pending = { user, cb, challenge: "SOFTWARE_TOKEN_MFA" };
      show("totp");
      say("totp");
    },
    mfaRequired: () => {
      pending = { user, cb, challenge: "SMS_MFA" };
      show("totp");
      say("totp");
    },
    selectMFAType: () => user.sendMFASelectionAnswer("SOFTWARE_TOKEN_MFA", cb),
    mfaSetup: () => {
      show("signin");
      say("mfaSetup");
    },
  };
  return cb;
}

function signIn(ev) {
  ev.preventDefault();
  const email = $("email").value.trim();
  const password = $("password").value;
  if (!email || !password) {
    say("badSignIn");
    return;
  }
  say("working");
  const user = new CognitoUser({ Username: email, Pool: pool });
  user.setAuthenticationFlowType("USER_PASSWORD_AUTH");
  user.authenticateUser(new AuthenticationDetails({ Username: email, Password: password }), callbacks(user));
}

function newPassword(ev) {
  ev.preventDefault();
  const pw = $("new-password").value;
  if (!pending || pending.challenge !== "new" || !pw) {
    say("badSignIn");
    return;
  }
  say("working");
  // No attributes: the user's profile is the administrator's to change, not this page's.
  pending.user.completeNewPasswordChallenge(pw, {}, pending.cb);
}

function totp(ev) {
  ev.preventDefault();
  const code = $("code").value.trim();
  if (!pending || pending.challenge === "new" || !code) {
    say("badCode");
    return;
  }
  say("working");
  pending.user.sendMFACode(code, pending.cb, pending.challenge);
}

async function store() {
  if (!token) {
    say("noToken");
    return;
  }
  say("working");
  const headers = { "Content-Type": "application/json" };
  if (session) {
    headers.Authorization = "Bearer " + session.getAccessToken().getJwtToken();
  }
  let status = 0;
  try {
    const resp = await fetch(location.pathname, {
      method: "POST",
      headers,
      body: JSON.stringify({ token }),
      credentials: "same-origin",
      cache: "no-store",
      referrerPolicy: "no-referrer",
    });
    status = resp.status;
  } catch (e) {
    status = 0;
  }
  switch (status) {
    case 200:
      show("");
      say("done");
      break;
    case 401:
      session = null;
      show("signin");
      say("unauthorized");
      break;
    case 403:
      say("wrongUser");
      break;
    case 410:
      show("");
      say("gone");
      break;
    case 429:
      say("rateLimited");
      break;
    default:
      say("failed");
  }
}

function signOut() {
  const user = pool.getCurrentUser();
  if (user) {
    user.signOut();
  }
  session = null;
  show("signin");
  say("signIn");
}

$("signin").addEventListener("submit", signIn);
$("newpassword").addEventListener("submit", newPassword);
$("totp").addEventListener("submit", totp);
$("store").addEventListener("click", store);
$("signout").addEventListener("click", signOut);

if (!token) {
  show("");
  say("noToken");
} else {
  // A session this browser already holds for the pool (the vault's, on the same
  // origin) is used as it is; otherwise the sign-in form.
  const current = pool.getCurrentUser();
  show("signin");
  say("signIn");
  if (current) {
    current.getSession((err, s) => {
      if (!err && s && s.isValid()) {
        signedIn(current, s);
      }
    });
  }
}
