/*
 * The upload page (upload_demo_page on;). Plain JavaScript on the gateway's client library
 * (/client.js: the global UploadGateway with fileUploader and sessionIdFor): every upload is the
 * library's fileUploader; this file is only the user interface around it.
 *
 * - several files, picked or dropped; per file a <progress>, percentage, speed, ETA;
 * - pause (abort), resume (ask the server what it has, send the rest), cancel;
 * - retries after a lost connection, with a countdown;
 * - session ids kept in localStorage: after a reload, choosing the same file again resumes it;
 * - with a progress location (report_uploads), the server's own count of received bytes, from its
 *   Server-Sent Events stream;
 * - on a location with upload_tus on, tus 1.0 as an option (tus-js-client, /_page/tus.js): the
 *   same session underneath, resumed after a reload from the URL tus-js-client keeps.
 */
(function () {
  'use strict';

  var settingsNode = document.getElementById('upload-gateway-settings');
  var settings = settingsNode ? JSON.parse(settingsNode.textContent) : { uploadUrl: '/upload', segmentSize: 8388608, concurrency: 3 };
  var params = new URLSearchParams(window.location.search);
  var segmentSize = Number(params.get('segmentSize')) || settings.segmentSize;
  var concurrency = Number(params.get('concurrency')) || settings.concurrency;
  var STORAGE_KEY = 'upload-gateway:uploads';
  var protocolChoice = document.getElementById('protocol-choice');
  var protocolSelect = document.getElementById('protocol');
  if (settings.tus && window.tus) {
    protocolChoice.hidden = false;
    if (params.get('protocol') === 'tus') protocolSelect.value = 'tus';
  }
  function protocol() {
    return settings.tus && window.tus && protocolSelect.value === 'tus' ? 'tus' : 'segments';
  }

  var list = document.getElementById('uploads');
  var rowTemplate = document.getElementById('upload-row');
  var notice = document.getElementById('notice');
  /** sessionId → Upload */
  var uploads = new Map();

  function formatBytes(n) {
    if (n === null || n === undefined || !isFinite(n)) return '';
    var units = ['B', 'KB', 'MB', 'GB', 'TB'];
    var i = 0;
    while (n >= 1000 && i < units.length - 1) {
      n /= 1000;
      i++;
    }
    return (i === 0 ? String(n) : n.toFixed(n < 10 ? 2 : 1)) + ' ' + units[i];
  }

  function formatDuration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return '';
    var s = Math.max(0, Math.round(seconds));
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    var rest = String(s % 60).padStart(2, '0');
    return h > 0 ? h + ':' + String(m).padStart(2, '0') + ':' + rest : m + ':' + rest;
  }

  function formatPercent(p) {
    return (Math.floor(p * 10) / 10).toFixed(1) + ' %';
  }

  function loadSaved() {
    try {
      return JSON.parse(window.localStorage.getItem(STORAGE_KEY) || '{}') || {};
    } catch (e) {
      return {};
    }
  }

  function save() {
    var data = {};
    uploads.forEach(function (u) {
      if (u.state !== 'done') data[u.sessionId] = { name: u.name, size: u.size, addedAt: u.addedAt, protocol: u.protocol };
    });
    try {
      window.localStorage.setItem(STORAGE_KEY, JSON.stringify(data));
    } catch (e) {
      // Private mode or full storage: uploads still work, only not across reloads.
    }
  }

  /** The reason the server gave (its one-line text/plain body), else the error's message. */
  function reasonOf(err) {
    var body = err && err.response && typeof err.response.body === 'string' ? err.response.body.trim() : '';
    if (body && body.length <= 300 && !/^</.test(body)) return body;
    return (err && err.message) || String(err);
  }

  function Upload(sessionId, meta) {
    this.sessionId = sessionId;
    this.name = meta.name;
    this.size = meta.size;
    this.addedAt = meta.addedAt || Date.now();
    this.protocol = meta.protocol || 'segments';
    this.file = null;
    this.state = 'waiting';
    this.running = false;
    this.controller = null;
    this.events = null;
    this.retryTimer = null;
    this.cancelled = false;
    /** Bytes on the wire (acknowledged plus in flight) at the last progress event, and when a retry began. */
    this.loaded = 0;
    this.loadedAtRetry = 0;

    var node = rowTemplate.content.firstElementChild.cloneNode(true);
    this.node = node;
    node.dataset.session = sessionId;
    this.el = {
      name: node.querySelector('.name'),
      size: node.querySelector('.size'),
      bar: node.querySelector('progress'),
      percent: node.querySelector('.percent'),
      speed: node.querySelector('.speed'),
      eta: node.querySelector('.eta'),
      status: node.querySelector('.status'),
      server: node.querySelector('.server'),
      pause: node.querySelector('.pause'),
      resume: node.querySelector('.resume'),
      cancel: node.querySelector('.cancel'),
      link: node.querySelector('.file-link'),
    };
    this.el.name.textContent = this.name;
    this.el.size.textContent = formatBytes(this.size);
    this.el.bar.setAttribute('aria-label', 'Upload progress of ' + this.name);
    var self = this;
    this.el.pause.addEventListener('click', function () { self.pause(); });
    this.el.resume.addEventListener('click', function () { self.resume(); });
    this.el.cancel.addEventListener('click', function () { self.cancel(); });
    list.appendChild(node);
  }

  Upload.prototype.setState = function (state, text) {
    this.state = state;
    this.node.dataset.state = state;
    if (text !== undefined) this.el.status.textContent = text;
    var active = state === 'uploading' || state === 'retrying';
    this.el.pause.hidden = !active;
    this.el.resume.hidden = !(state === 'paused' || state === 'error') || !this.file;
    this.el.cancel.hidden = state === 'done';
    if (state !== 'retrying') this.stopCountdown();
    if (state !== 'uploading') {
      this.el.speed.textContent = '';
      this.el.eta.textContent = '';
    }
  };

  Upload.prototype.showBar = function (percent) {
    this.el.bar.value = percent;
    this.el.percent.textContent = formatPercent(percent);
  };

  Upload.prototype.attach = function (file) {
    this.file = file;
    delete this.node.dataset.needsFile;
    this.name = file.name;
    this.size = file.size;
    this.el.name.textContent = file.name;
    this.el.size.textContent = formatBytes(file.size);
  };

  Upload.prototype.progress = function (p) {
    if (!this.running || this.cancelled) return;
    // While waiting to retry, only new bytes on the wire mean the connection is back.
    if (this.state === 'retrying' && p.loaded <= this.loadedAtRetry) return;
    this.loaded = p.loaded;
    if (this.state !== 'uploading') this.setState('uploading', 'Uploading…');
    else if (this.el.status.textContent !== 'Uploading…') this.el.status.textContent = 'Uploading…';
    this.showBar(p.percent);
    this.el.speed.textContent = p.bytesPerSecond > 0 ? formatBytes(p.bytesPerSecond) + '/s' : '';
    this.el.eta.textContent = p.etaSeconds !== null && p.etaSeconds !== undefined && p.percent < 100 ? formatDuration(p.etaSeconds) + ' left' : '';
  };

  Upload.prototype.stopCountdown = function () {
    if (this.retryTimer) clearInterval(this.retryTimer);
    this.retryTimer = null;
  };

  /** The library is about to retry after `delayMs`: show the countdown. */
  Upload.prototype.retrying = function (info) {
    if (!this.running || this.cancelled) return;
    var until = Date.now() + info.delayMs;
    var self = this;
    var show = function () {
      var left = Math.max(1, Math.ceil((until - Date.now()) / 1000));
      self.el.status.textContent = 'Connection lost. Retrying in ' + left + ' s\u2026';
    };
    this.loadedAtRetry = this.loaded || 0;
    this.stopCountdown();
    this.setState('retrying');
    this.el.speed.textContent = '';
    this.el.eta.textContent = '';
    show();
    this.retryTimer = setInterval(function () {
      if (self.state !== 'retrying') return self.stopCountdown();
      if (Date.now() < until) return show();
      self.stopCountdown();
      self.el.status.textContent = 'Connection lost. Retrying now\u2026';
    }, 250);
  };

  /** The server's own count (Server-Sent Events of the progress location). */
  Upload.prototype.openEvents = function () {
    if (!settings.progressUrl || !window.EventSource || this.events) return;
    var url = settings.progressUrl + '?' + encodeURIComponent(settings.progressArgument) + '=' + encodeURIComponent(this.sessionId);
    var events = new EventSource(url);
    var self = this;
    this.events = events;
    events.onmessage = function (message) {
      var data;
      try {
        data = JSON.parse(message.data);
      } catch (e) {
        return;
      }
      self.showServer(data.state === 'starting' ? null : data, true);
      self.node.dataset.serverReceived = String(data.received);
      if (data.state === 'done' || data.state === 'error') self.closeEvents();
    };
    // The stream reconnects by itself; meanwhile the last count stays, without a speed.
    events.onerror = function () { self.showServer(self.lastServer, false); };
  };

  Upload.prototype.showServer = function (data, withSpeed) {
    if (!data || data.total === null) return;
    this.lastServer = data;
    this.el.server.textContent = 'Server has ' + formatBytes(data.received) + ' of ' + formatBytes(data.total) +
      (withSpeed && data.bytesPerSecond > 0 ? ' (' + formatBytes(data.bytesPerSecond) + '/s)' : '');
  };

  Upload.prototype.closeEvents = function () {
    if (this.events) this.events.close();
    this.events = null;
  };

  /** After a reload, before the file is chosen again: what the server holds (the D22 status query). */
  Upload.prototype.queryServer = function () {
    var self = this;
    // A tus upload's URL is kept by tus-js-client; it resumes when the file is chosen again.
    if (this.protocol === 'tus') return Promise.resolve();
    return UploadGateway.sessionStatus(this.sessionId, this.size, { url: settings.uploadUrl }).then(function (status) {
      if (!status) return;
      var held = status.state === 'complete' ? status.total : UploadGateway.coveredBytes(status.ranges);
      if (held === 0 && status.state === 'incomplete') {
        self.el.server.textContent = 'Nothing on the server yet';
        return;
      }
      self.showBar(status.total > 0 ? (held / status.total) * 100 : 0);
      self.node.dataset.serverReceived = String(held);
      self.el.server.textContent = 'Server has ' + formatBytes(held) + ' of ' + formatBytes(status.total);
    }).catch(function () {
      self.el.server.textContent = '';
    });
  };

  Upload.prototype.start = function () {
    if (this.running || !this.file) return;
    var self = this;
    this.running = true;
    this.cancelled = false;
    this.controller = new AbortController();
    this.el.link.hidden = true;
    this.setState('uploading', 'Asking the server what it has\u2026');
    this.openEvents();
    save();
    var headers = {};
    if (settings.progressHeader) headers[settings.progressHeader] = this.sessionId;
    if (this.protocol === 'tus') return this.startTus(headers);
    var uploader = UploadGateway.fileUploader(this.file, segmentSize, this.sessionId, {
      url: settings.uploadUrl,
      concurrency: concurrency,
      retries: 10,
      maxRetryDelay: 8000,
      signal: this.controller.signal,
      headers: headers,
      onProgress: function (p) { self.progress(p); },
      onRetry: function (info) { self.retrying(info); },
    });
    uploader.fetchStatus()
      .then(function (status) {
        var held = UploadGateway.coveredBytes(status.ranges);
        if (held > 0 && status.state !== 'complete') self.el.status.textContent = 'Resuming: the server has ' + formatBytes(held);
        self.showBar(status.total > 0 ? (held / status.total) * 100 : 0);
        return uploader.uploadSegments(status);
      })
      .then(function (done) { self.finished(done); })
      .catch(function (err) {
        if (self.cancelled) return;
        if (err && err.name === 'AbortError') self.setState('paused', 'Paused');
        else self.failed(err);
      })
      .then(function () {
        self.running = false;
        self.stopCountdown();
        self.closeEvents();
        if (self.state === 'paused' || self.state === 'error') self.setState(self.state);
      });
  };

  /** The same upload with tus (tus-js-client): pause aborts it, resume and reloads continue from the server's offset. */
  Upload.prototype.startTus = function (headers) {
    var self = this;
    var settle = function () {
      self.running = false;
      self.stopCountdown();
      self.closeEvents();
      if (self.state === 'paused' || self.state === 'error') self.setState(self.state);
    };
    var upload = new window.tus.Upload(this.file, {
      endpoint: settings.uploadUrl,
      chunkSize: segmentSize,
      retryDelays: [0, 1000, 3000, 5000, 8000, 8000, 8000, 8000, 8000, 8000],
      metadata: { filename: this.file.name, filetype: this.file.type || 'application/octet-stream' },
      headers: headers,
      onProgress: function (sent, total) {
        self.progress({ loaded: sent, total: total, percent: total > 0 ? (100 * sent) / total : 0, bytesPerSecond: 0, etaSeconds: null });
      },
      onShouldRetry: function (err, attempt, options) {
        var status = err.originalResponse ? err.originalResponse.getStatus() : 0;
        var retry = status === 0 || status >= 500 || status === 409 || status === 423;
        if (retry) self.retrying({ delayMs: options.retryDelays[attempt] || 0 });
        return retry;
      },
      onSuccess: function (payload) {
        var res = payload.lastResponse;
        self.finished({ response: { headers: { 'x-file-url': res.getHeader('X-File-Url') || undefined }, body: res.getBody() } });
        settle();
      },
      onError: function (err) {
        if (!self.cancelled) self.failed(err);
        settle();
      },
    });
    this.controller.signal.addEventListener('abort', function () {
      upload.abort();
      settle();
    });
    upload.findPreviousUploads().then(function (previous) {
      if (self.controller.signal.aborted) return;
      if (previous.length > 0) {
        upload.resumeFromPreviousUpload(previous[0]);
        self.el.status.textContent = 'Resuming\u2026';
      }
      upload.start();
    });
  };

  Upload.prototype.finished = function (done) {
    this.showBar(100);
    this.el.speed.textContent = '';
    this.el.eta.textContent = '';
    this.el.server.textContent = 'Server has ' + formatBytes(this.size) + ' of ' + formatBytes(this.size);
    var url = done.response && done.response.headers ? done.response.headers['x-file-url'] : undefined;
    if (url) {
      this.el.link.href = url.split(',')[0].trim();
      this.el.link.textContent = 'Open ' + this.name;
      this.el.link.hidden = false;
    }
    this.setState('done', done.response && done.response.body === null ? 'Done (it was completed earlier)' : 'Done');
    save();
  };

  Upload.prototype.failed = function (err) {
    this.showServer(this.lastServer, false);
    this.setState('error', 'Error: ' + reasonOf(err));
    save();
  };

  Upload.prototype.pause = function () {
    if (!this.running) return;
    this.setState('paused', 'Paused');
    this.controller.abort();
    this.closeEvents();
    this.showServer(this.lastServer, false);
  };

  Upload.prototype.resume = function () {
    if (this.file) this.start();
  };

  Upload.prototype.cancel = function () {
    this.cancelled = true;
    if (this.controller) this.controller.abort();
    this.closeEvents();
    this.stopCountdown();
    uploads.delete(this.sessionId);
    this.node.remove();
    save();
  };

  function addFiles(files) {
    notice.hidden = true;
    Array.prototype.forEach.call(files, function (file) {
      if (file.size === 0) {
        notice.textContent = file.name + ' is empty: there is nothing to upload.';
        notice.hidden = false;
        return;
      }
      UploadGateway.sessionIdFor(file).then(function (sessionId) {
        var upload = uploads.get(sessionId);
        if (!upload) {
          upload = new Upload(sessionId, { name: file.name, size: file.size, protocol: protocol() });
          uploads.set(sessionId, upload);
        }
        if (upload.running || upload.state === 'done') return;
        upload.attach(file);
        upload.start();
      });
    });
  }

  var picker = document.getElementById('picker');
  picker.addEventListener('change', function () {
    addFiles(picker.files);
    picker.value = '';
  });

  var dropzone = document.getElementById('dropzone');
  ['dragenter', 'dragover'].forEach(function (type) {
    dropzone.addEventListener(type, function (event) {
      event.preventDefault();
      dropzone.classList.add('over');
    });
  });
  dropzone.addEventListener('dragleave', function () { dropzone.classList.remove('over'); });
  dropzone.addEventListener('drop', function (event) {
    event.preventDefault();
    dropzone.classList.remove('over');
    if (event.dataTransfer && event.dataTransfer.files) addFiles(event.dataTransfer.files);
  });
  // A file dropped beside the zone must not replace the page.
  window.addEventListener('dragover', function (event) { event.preventDefault(); });
  window.addEventListener('drop', function (event) { event.preventDefault(); });

  if (!settings.uploadUrl) {
    notice.textContent = 'This gateway has no resumable upload location (upload_resumable on;).';
    notice.hidden = false;
  }

  // Uploads of an earlier visit: the browser forgot the files, the server kept the bytes.
  var saved = loadSaved();
  Object.keys(saved).forEach(function (sessionId) {
    var upload = new Upload(sessionId, saved[sessionId]);
    uploads.set(sessionId, upload);
    upload.setState('paused', 'Paused \u2014 choose ' + upload.name + ' again to resume');
    upload.node.dataset.state = 'paused';
    upload.node.dataset.needsFile = 'true';
    upload.queryServer();
  });

  window.uploadPage = { uploads: uploads, settings: settings };
})();
